/* bad-high: reads an address above 4 GiB. No area can be there (the pager keeps everything
 * below 4 GiB), but seL4 5.0 reports x86_64 fault addresses in 32 bits, so the pager sees the
 * low half only. 0x1_0000_0000 truncates to 0, which is no area either: the pager must stop the
 * app with `no area` whichever address it is told. */
#include "pager_app.h"

#define HIGH_ADDRESS 0x100000000UL

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    pager_line_add(&line, "reading address ");
    pager_line_add_hex(&line, HIGH_ADDRESS);
    pager_line_print(&line);
    const volatile unsigned long *high = (const volatile unsigned long *)pager_opaque(HIGH_ADDRESS);
    unsigned long value = *high;
    pager_line_add(&line, "FAILED: read ");
    pager_line_add_hex(&line, value);
    pager_line_add(&line, " above 4 GiB");
    pager_line_print(&line);
    pager_exit(1);
}
