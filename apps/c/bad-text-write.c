/* bad-text-write: writes into its own code. The text segment is read-only (and mapped from the
 * image's frames, which every instance shares), so the pager must stop it with
 * `write to read-only`. */
#include "pager_app.h"

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    volatile unsigned char *code = (volatile unsigned char *)pager_opaque((unsigned long)&_start);
    /* No address in the line: it changes with the compiler; the pager's report names it. */
    pager_line_add(&line, "writing to my own text");
    pager_line_print(&line);
    *code = 0xcc; /* int3 */
    pager_line_add(&line, "FAILED: wrote to my own text");
    pager_line_print(&line);
    pager_exit(1);
}
