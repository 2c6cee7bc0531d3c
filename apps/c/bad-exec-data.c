/* bad-exec-data: jumps into a page of its .data that nothing has touched yet. The page lies in
 * the writable, non-executable segment, so the pager must refuse the instruction fetch with
 * `execute in non-executable`. seL4 5.0 never enables NX, so the pager can only tell on the
 * first touch, when the fault address is the instruction pointer's page: hence a page of its
 * own, aligned and sized so that nothing else lives in it, and never read before the jump. */
#include "pager_app.h"

/* mov eax, 3; ret: returns 3 if the pager maps the page and lets it run. Initialised, so it is
 * in .data (copied from the image on first touch), not in .bss. */
static unsigned char data_code[PAGER_PAGE_SIZE] __attribute__((aligned(PAGER_PAGE_SIZE))) = {
    0xb8, 0x03, 0x00, 0x00, 0x00, 0xc3,
};

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    unsigned long address = pager_opaque((unsigned long)data_code);
    /* No address in the line: it changes with the compiler; the pager's report names it. */
    pager_line_add(&line, "jumping into an untouched .data page");
    pager_line_print(&line);
    int result = ((int (*)(void))address)();
    pager_line_add(&line, "FAILED: code in .data ran and returned ");
    pager_line_add_unsigned(&line, (unsigned long)result);
    pager_line_print(&line);
    pager_exit(1);
}
