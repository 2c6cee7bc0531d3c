/* bench-floor: the client side of the kernel's floor in `cargo xtask bench` (manifests/bench/
 * floor.toml): seL4's fault round trip with nothing to map, as sel4bench's fault benchmark takes it.
 * It executes `ud2`; the kernel sends the user-exception fault to the pager, which (for an app
 * marked `bench_floor = true`, and only for one) steps the instruction pointer over the two bytes
 * and replies, so the thread resumes at the next instruction. Each sample is the whole round trip,
 * less the cost of the same two time-stamp readings with nothing between them (`warm`).
 *
 * The first ud2 is a warm-up, not timed: at it the pager also times its own `CNode_Copy` and
 * `Page_Map` calls (root-task/src/floor.rs). One line:
 *   bench: floor=round_trip samples=<n> median=<ticks> min=<ticks> max=<ticks> sum=<ticks> warm=<ticks> */
#include "pager_app.h"
#include "bench.h"

#define SAMPLES 64

static inline unsigned long time_ud2(void)
{
    unsigned long start = bench_timestamp();
    __asm__ volatile("ud2" ::: "memory");
    return bench_timestamp() - start;
}

static inline unsigned long time_nothing(void)
{
    unsigned long start = bench_timestamp();
    return bench_timestamp() - start;
}

static void sort(unsigned long *values, unsigned long count)
{
    for (unsigned long i = 1; i < count; i++) {
        unsigned long value = values[i], j = i;
        for (; j > 0 && values[j - 1] > value; j--)
            values[j] = values[j - 1];
        values[j] = value;
    }
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    unsigned long samples[SAMPLES];
    (void)time_ud2();
    for (unsigned long i = 0; i < SAMPLES; i++)
        samples[i] = time_ud2();
    unsigned long warm = time_nothing(), sum = 0;
    for (unsigned long i = 0; i < SAMPLES; i++) {
        samples[i] = samples[i] > warm ? samples[i] - warm : 0;
        sum += samples[i];
    }
    sort(samples, SAMPLES);
    struct pager_line line = {0};
    pager_line_add(&line, "bench: floor=round_trip samples=");
    pager_line_add_unsigned(&line, SAMPLES);
    pager_line_add(&line, " median=");
    pager_line_add_unsigned(&line, samples[SAMPLES / 2]);
    pager_line_add(&line, " min=");
    pager_line_add_unsigned(&line, samples[0]);
    pager_line_add(&line, " max=");
    pager_line_add_unsigned(&line, samples[SAMPLES - 1]);
    pager_line_add(&line, " sum=");
    pager_line_add_unsigned(&line, sum);
    pager_line_add(&line, " warm=");
    pager_line_add_unsigned(&line, warm);
    pager_line_print(&line);
    pager_print("bench-floor: ok\n");
    pager_exit(0);
}
