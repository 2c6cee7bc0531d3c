/* bad-opcode: executes ud2. The kernel sends a user-exception fault (vector 6, invalid opcode) to
 * the client's fault endpoint; the pager must stop it with `invalid opcode` and go on serving the
 * other clients. */
#include "pager_app.h"

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    pager_line_add(&line, "executing ud2");
    pager_line_print(&line);
    __asm__ volatile("ud2");
    pager_line_add(&line, "FAILED: ud2 returned");
    pager_line_print(&line);
    pager_exit(1);
}
