/* bench-touch: the client of `cargo xtask bench`'s lazy-against-eager figures. It writes one byte
 * in every TOUCH_STRIDE-th page of a 16 MiB .bss (built twice: stride 10 touches 10 %, stride 1
 * everything), then exits. Its first instruction reads the time-stamp counter and its one line
 * of output reports it:
 *   bench: first_tsc=<ticks> touched=<pages> of=<pages>
 * so the bench can count instructions from the pager's setup of this client to its first
 * instruction (the pager prints the setup time in its `[stats] scope=timeline` line). */
#include "pager_app.h"
#include "bench.h"

#ifndef TOUCH_STRIDE
#error "build with -DTOUCH_STRIDE=<n>"
#endif

#define PAGES 4096

static volatile unsigned char pages[PAGES][PAGER_PAGE_SIZE] __attribute__((aligned(PAGER_PAGE_SIZE)));

void bench_main(long instance, long heap_base, long heap_size, long client, unsigned long first_tsc)
    __attribute__((noreturn, used));

/* The entry point: keep the entry registers (rdi, rsi, rdx, rcx), read the counter into r8, the
 * fifth argument, and jump, so bench_main starts as if _start had been called. */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "    mov %rdx, %r9\n"
        "    rdtsc\n"
        "    shl $32, %rdx\n"
        "    or %rax, %rdx\n"
        "    mov %rdx, %r8\n"
        "    mov %r9, %rdx\n"
        "    jmp bench_main\n");

void bench_main(long instance, long heap_base, long heap_size, long client, unsigned long first_tsc)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    unsigned long touched = 0;
    for (unsigned long page = 0; page < PAGES; page += TOUCH_STRIDE) {
        pages[page][page % PAGER_PAGE_SIZE] = 1;
        touched++;
    }
    struct pager_line line = {0};
    pager_line_add(&line, "bench: first_tsc=");
    pager_line_add_unsigned(&line, first_tsc);
    pager_line_add(&line, " touched=");
    pager_line_add_unsigned(&line, touched);
    pager_line_add(&line, " of=");
    pager_line_add_unsigned(&line, PAGES);
    pager_line_print(&line);
    pager_exit(0);
}
