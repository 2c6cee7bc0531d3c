/* policy-check: checks its own memory from inside, under whatever policy the manifest gives it
 * (manifests/policies.toml runs one instance per policy; manifests/cow.toml four under cow).
 *
 * It reads every page of an initialised data array (4 pages), a .bss array (8 pages) and the
 * first 4 pages of its heap, checking the ELF's values and zeroes; then writes half of each with
 * a marker of its own instance, and checks every page again: its writes where it wrote, the
 * file's bytes and zeroes elsewhere. A policy that maps a shared frame read-only first (zero-page,
 * cow) must give the writer a frame of its own, and never let another instance see the write.
 *
 * Built with -DSYNC_INSTANCES=<n> (cow-check), the instances meet in the `sync` region at
 * SYNC_ADDRESS between writing and checking: each checks only after all n have written, so a
 * write that leaked into a shared frame would be seen. The output is the same under every policy. */
#include "pager_app.h"

#define DATA_PAGES 4
#define BSS_PAGES 8
#define HEAP_PAGES 4
#define WORDS (PAGER_PAGE_SIZE / sizeof(unsigned long))
#define SYNC_ADDRESS 0x10000000UL
#define WAIT_LIMIT 1000000UL

/* The ELF's values: the first and last word of each page (the rest zero). */
#define FIRST(p) (0x1000UL + (p))
#define LAST(p) (0xD000UL + (p))
#define PAGE_INIT(p) { [0] = FIRST(p), [WORDS - 1] = LAST(p) }

static volatile unsigned long data[DATA_PAGES][WORDS] __attribute__((aligned(PAGER_PAGE_SIZE))) = {
    PAGE_INIT(0), PAGE_INIT(1), PAGE_INIT(2), PAGE_INIT(3),
};
static volatile unsigned long bss[BSS_PAGES][WORDS] __attribute__((aligned(PAGER_PAGE_SIZE)));

static __attribute__((noreturn)) void fail(const char *why, unsigned long page, unsigned long value)
{
    struct pager_line line = {0};
    pager_line_add(&line, "FAILED: ");
    pager_line_add(&line, why);
    pager_line_add_unsigned(&line, page);
    pager_line_add(&line, ": ");
    pager_line_add_hex(&line, value);
    pager_line_print(&line);
    pager_exit(1);
}

static unsigned long marker(long instance, unsigned long page)
{
    return 0xA0000UL + ((unsigned long)instance << 8) + page;
}

/* Checks every page: `written` pages of each array hold this instance's markers, the rest the
 * ELF's values or zeroes. */
static void check(long instance, volatile unsigned long (*heap)[WORDS], unsigned long written)
{
    for (unsigned long p = 0; p < DATA_PAGES; p++) {
        unsigned long first = p < written / 2 ? marker(instance, p) : FIRST(p);
        if (data[p][0] != first)
            fail("data page ", p, data[p][0]);
        if (data[p][WORDS - 1] != LAST(p) || data[p][1] != 0)
            fail("data page (other words) ", p, data[p][WORDS - 1]);
    }
    for (unsigned long p = 0; p < BSS_PAGES; p++) {
        unsigned long first = p < written ? marker(instance, p) : 0;
        if (bss[p][0] != first)
            fail("bss page ", p, bss[p][0]);
        if (bss[p][WORDS / 2] != 0)
            fail("bss page (middle) ", p, bss[p][WORDS / 2]);
    }
    for (unsigned long p = 0; heap && p < HEAP_PAGES; p++) {
        unsigned long first = p < written / 2 ? marker(instance, p) : 0;
        if (heap[p][0] != first || heap[p][WORDS - 1] != 0)
            fail("heap page ", p, heap[p][0]);
    }
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)client;
    struct pager_line line = {0};
    volatile unsigned long(*heap)[WORDS] = 0;
    if ((unsigned long)heap_size >= HEAP_PAGES * PAGER_PAGE_SIZE)
        heap = (volatile unsigned long(*)[WORDS])pager_opaque((unsigned long)heap_base);

    check(instance, heap, 0);
    pager_line_add(&line, "policy-check: reads ok");
    pager_line_print(&line);

    for (unsigned long p = 0; p < BSS_PAGES / 2; p++) {
        if (p < DATA_PAGES / 2)
            data[p][0] = marker(instance, p);
        bss[p][0] = marker(instance, p);
        if (heap && p < HEAP_PAGES / 2)
            heap[p][0] = marker(instance, p);
    }
#ifdef SYNC_INSTANCES
    volatile unsigned long *sync = (volatile unsigned long *)pager_opaque(SYNC_ADDRESS);
    __atomic_fetch_add(&sync[0], 1, __ATOMIC_ACQ_REL);
    unsigned long waited = 0;
    while (__atomic_load_n(&sync[0], __ATOMIC_ACQUIRE) < SYNC_INSTANCES) {
        if (++waited == WAIT_LIMIT)
            fail("not every instance wrote, after yields: ", WAIT_LIMIT, sync[0]);
        pager_yield();
    }
#endif
    check(instance, heap, BSS_PAGES / 2);
    line.length = 0;
    pager_line_add(&line, "policy-check: writes ok, private");
    pager_line_print(&line);
    pager_exit(0);
}
