/* bad-wide: touches one page in every 2 MiB of a 128 MiB .bss, so each touch needs a new page
 * table. A client's kernel objects live in its own block of the root CNode (64 slots) and its own
 * 256 KiB untyped chunk (root-task/src/client.rs, platform.rs); the block's slots run out first,
 * after about 55 page tables. The pager must stop it with `no page table could be made` and go on
 * serving the other clients. */
#include "pager_app.h"

#define SPAN (2UL << 20)
#define SPANS 64

static volatile unsigned char wide[SPANS][SPAN] __attribute__((aligned(SPAN)));

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    pager_line_add(&line, "touching one page in each of ");
    pager_line_add_unsigned(&line, SPANS);
    pager_line_add(&line, " 2 MiB spans");
    pager_line_print(&line);
    for (unsigned long span = 0; span < SPANS; span++)
        wide[span][0] = 1;
    pager_line_add(&line, "FAILED: ");
    pager_line_add_unsigned(&line, SPANS);
    pager_line_add(&line, " page tables fitted in the client's chunk");
    pager_line_print(&line);
    pager_exit(1);
}
