/* bad-null: reads address 0. The pager must stop it with `no area` (page 0 is never an area)
 * and go on serving the other clients. */
#include "pager_app.h"

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    pager_line_add(&line, "reading address 0");
    pager_line_print(&line);
    /* Opaque, so the compiler emits the load instead of a trap for a known null dereference. */
    const volatile unsigned long *null = (const volatile unsigned long *)pager_opaque(0);
    unsigned long value = *null;
    pager_line_add(&line, "FAILED: read ");
    pager_line_add_hex(&line, value);
    pager_line_add(&line, " at address 0");
    pager_line_print(&line);
    pager_exit(1);
}
