/* stress: one run of a client in manifests/stress.toml, which runs it many times per instance.
 *
 * A run touches every page of a 4 MiB .bss once, in order: it checks that the page first reads
 * as zero (a fresh client must never see an earlier run's data), fills it with a pattern naming
 * this instance, page and word, and after every page is written checks them all again (two pages
 * backed by one frame would show there). Then it prints one line and exits 0; on a mismatch it
 * prints what mismatched and exits 2 (not zero at first touch) or 3 (pattern lost).
 *
 * The fault count of a run is fixed: one per .bss page (the first touch is a read, which maps the
 * page with the segment's read-write rights, so the writes that follow do not fault), plus the
 * few pages of text, read-only data and stack the run touches, the same every run. */
#include "pager_app.h"

#define PAGES 1024UL
#define WORDS (PAGER_PAGE_SIZE / sizeof(unsigned long))

static unsigned long pages[PAGES][WORDS] __attribute__((aligned(PAGER_PAGE_SIZE)));

static unsigned long pattern(long instance, unsigned long page, unsigned long word)
{
    return 0x5354524553530000UL ^ ((unsigned long)instance << 40) ^ (page << 12) ^ word;
}

static __attribute__((noreturn)) void mismatch(const char *what, unsigned long page, unsigned long word,
                                               unsigned long seen, unsigned long expected, long code)
{
    struct pager_line line = {0};
    pager_line_add(&line, "FAILED: ");
    pager_line_add(&line, what);
    pager_line_add(&line, ": page ");
    pager_line_add_unsigned(&line, page);
    pager_line_add(&line, " word ");
    pager_line_add_unsigned(&line, word);
    pager_line_add(&line, " holds ");
    pager_line_add_hex(&line, seen);
    pager_line_add(&line, ", expected ");
    pager_line_add_hex(&line, expected);
    pager_line_print(&line);
    pager_exit(code);
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)heap_base, (void)heap_size, (void)client;
    /* Hidden from the optimiser, so it cannot assume what a .bss page holds. */
    unsigned long(*memory)[WORDS] = (unsigned long(*)[WORDS])pager_opaque((unsigned long)pages);
    for (unsigned long page = 0; page < PAGES; page++) {
        for (unsigned long word = 0; word < WORDS; word++)
            if (memory[page][word] != 0)
                mismatch("not zero at first touch", page, word, memory[page][word], 0, 2);
        for (unsigned long word = 0; word < WORDS; word++)
            memory[page][word] = pattern(instance, page, word);
    }
    memory = (unsigned long(*)[WORDS])pager_opaque((unsigned long)memory);
    for (unsigned long page = 0; page < PAGES; page++)
        for (unsigned long word = 0; word < WORDS; word++)
            if (memory[page][word] != pattern(instance, page, word))
                mismatch("pattern lost", page, word, memory[page][word], pattern(instance, page, word), 3);
    struct pager_line line = {0};
    pager_line_add_unsigned(&line, PAGES);
    pager_line_add(&line, " pages zeroed, written and verified");
    pager_line_print(&line);
    pager_exit(0);
}
