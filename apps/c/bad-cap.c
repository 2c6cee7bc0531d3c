/* bad-cap: calls through CPtr 0x1000, which its 16-slot CSpace cannot resolve (the guard does
 * not match). The kernel turns the failed lookup into a capability fault on the client's fault
 * endpoint; the pager must stop it with `capability fault` and go on serving the other clients.
 * (A call through an empty slot inside the CSpace is no fault: it returns an error.) */
#include "pager_app.h"

#define UNRESOLVABLE 0x1000UL

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    pager_line_add(&line, "calling through CPtr ");
    pager_line_add_hex(&line, UNRESOLVABLE);
    pager_line_print(&line);
    /* seL4_Call with an empty message, as pager_call does but on another slot. */
    unsigned long number = (unsigned long)PAGER_SYSCALL_CALL;
    unsigned long cap = UNRESOLVABLE;
    unsigned long info = 0;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp"
                     : "+d"(number), "+D"(cap), "+S"(info)
                     :
                     : "rcx", "r11", "r12", "r10", "r8", "r9", "r15", "memory");
    pager_line_add(&line, "FAILED: the call through an unresolvable CPtr returned");
    pager_line_print(&line);
    pager_exit(1);
}
