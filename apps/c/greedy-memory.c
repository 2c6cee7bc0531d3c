/* greedy-memory: touches a 256 MiB .bss page by page, far more than exhaust-untyped.toml gives
 * the machine (64 MiB), with a frame pool larger than memory: the pager must stop it when no
 * frame can be retyped from untyped memory any more ("untyped memory is used up") and give every
 * frame it had back to the pool.
 *
 * It first waits until hello#0 is gone: whichever client asks for a frame when none is left is
 * refused, and in this image that must be this one. */
#include "pager_app.h"
#include "probe.h"

#define PAGES 65536UL

static volatile unsigned char pages[PAGES][PAGER_PAGE_SIZE] __attribute__((aligned(PAGER_PAGE_SIZE)));

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    probe_wait_until_gone("hello", 0);
    struct pager_line line = {0};
    pager_line_add(&line, "touching ");
    pager_line_add_unsigned(&line, PAGES);
    pager_line_add(&line, " pages");
    pager_line_print(&line);
    for (unsigned long page = 0; page < PAGES; page++)
        pages[page][0] = (unsigned char)(page + 1);
    pager_line_add(&line, "FAILED: all ");
    pager_line_add_unsigned(&line, PAGES);
    pager_line_add(&line, " pages were served");
    pager_line_print(&line);
    pager_exit(1);
}
