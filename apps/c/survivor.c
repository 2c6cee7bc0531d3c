/* survivor: shows that the pager goes on serving once a greedy client has used something up and
 * been stopped (exhaust-untyped.toml, exhaust-slots.toml). It waits until greedy#0 is gone (the
 * app each of those images names "greedy"), then needs what greedy#0 used up: 64 new .bss pages
 * (new frames: after untyped memory ran out they can only be the frames greedy#0 gave back) and
 * 8 pages of its read-only data (the boot image's frames, one cap-copy slot each). It checks
 * them all, prints what it was served and exits 0; on a mismatch it prints it and exits 2. */
#include "pager_app.h"
#include "probe.h"

#define NEW_PAGES 64UL
#define IMAGE_PAGES 8UL

static unsigned long pages[NEW_PAGES][PAGER_PAGE_SIZE / sizeof(unsigned long)]
    __attribute__((aligned(PAGER_PAGE_SIZE)));

static const unsigned char table[IMAGE_PAGES][PAGER_PAGE_SIZE] __attribute__((aligned(PAGER_PAGE_SIZE))) = {
    [0 ... IMAGE_PAGES - 1] = {0xa5},
};

static __attribute__((noreturn)) void fail(const char *what, unsigned long page)
{
    struct pager_line line = {0};
    pager_line_add(&line, "FAILED: ");
    pager_line_add(&line, what);
    pager_line_add(&line, " on page ");
    pager_line_add_unsigned(&line, page);
    pager_line_print(&line);
    pager_exit(2);
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    pager_line_add(&line, "waiting for greedy#0 to be stopped");
    pager_line_print(&line);
    probe_wait_until_gone("greedy", 0);
    pager_line_add(&line, "greedy#0 is gone");
    pager_line_print(&line);

    unsigned long(*memory)[PAGER_PAGE_SIZE / sizeof(unsigned long)] =
        (unsigned long(*)[PAGER_PAGE_SIZE / sizeof(unsigned long)])pager_opaque((unsigned long)pages);
    for (unsigned long page = 0; page < NEW_PAGES; page++) {
        if (memory[page][0] != 0)
            fail("not zero at first touch", page);
        memory[page][0] = (unsigned long)instance << 32 | page;
    }
    for (unsigned long page = 0; page < NEW_PAGES; page++)
        if (memory[page][0] != ((unsigned long)instance << 32 | page))
            fail("pattern lost", page);
    const volatile unsigned char(*image)[PAGER_PAGE_SIZE] = table;
    for (unsigned long page = 0; page < IMAGE_PAGES; page++)
        if (image[page][0] != 0xa5 || image[page][1] != 0)
            fail("image data wrong", page);

    pager_line_add(&line, "served ");
    pager_line_add_unsigned(&line, NEW_PAGES);
    pager_line_add(&line, " new pages and ");
    pager_line_add_unsigned(&line, IMAGE_PAGES);
    pager_line_add(&line, " image pages after greedy#0 was stopped");
    pager_line_print(&line);
    pager_exit(0);
}
