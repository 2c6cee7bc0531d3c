/* bad-budget: touches more pages than its manifest's frame_budget (16 in bad-clients.toml): 64
 * pages of .bss, one write each. The pager must stop it with `over its budget` when it asks
 * for the frame past its budget, and give every frame it had back to the pool. */
#include "pager_app.h"

#define PAGES 64

static volatile unsigned char pages[PAGES][PAGER_PAGE_SIZE] __attribute__((aligned(PAGER_PAGE_SIZE)));

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    pager_line_add(&line, "touching ");
    pager_line_add_unsigned(&line, PAGES);
    pager_line_add(&line, " pages");
    pager_line_print(&line);
    for (unsigned long page = 0; page < PAGES; page++)
        pages[page][0] = (unsigned char)(page + 1);
    pager_line_add(&line, "FAILED: touched ");
    pager_line_add_unsigned(&line, PAGES);
    pager_line_add(&line, " pages within the budget");
    pager_line_print(&line);
    pager_exit(1);
}
