/* bad-syscall: makes a syscall with a number the kernel does not know (100). The kernel sends an
 * unknown-syscall fault to the client's fault endpoint; the pager must stop it with
 * `unknown syscall 100` and go on serving the other clients. */
#include "pager_app.h"

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    pager_line_add(&line, "making syscall 100");
    pager_line_print(&line);
    unsigned long number = 100;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp"
                     : "+d"(number)
                     :
                     : "rcx", "r11", "r12", "rdi", "rsi", "r10", "r8", "r9", "r15", "memory");
    pager_line_add(&line, "FAILED: syscall 100 returned");
    pager_line_print(&line);
    pager_exit(1);
}
