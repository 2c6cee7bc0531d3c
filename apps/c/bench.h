/* bench.h: time-stamp readings for the benchmark apps (see `cargo xtask bench`).
 *
 * Under QEMU's `-icount shift=0` the TSC advances by one per guest instruction, so a difference of
 * two readings is an exact instruction count that repeats run to run. */
#ifndef BENCH_H
#define BENCH_H

static inline unsigned long bench_timestamp(void)
{
    unsigned int low, high;
    /* "memory": no load or store moves across a reading. */
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high) : : "memory");
    return (unsigned long)high << 32 | low;
}

#endif
