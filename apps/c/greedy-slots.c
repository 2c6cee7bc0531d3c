/* greedy-slots: reads one byte of each page of a 1 MiB table in its read-only data. Each such
 * page is the boot image's own frame, mapped through a cap copy, so with exhaust-slots.toml's
 * 128 cap-copy slots the pager must stop it when every slot is in use ("cap-copy slots are in
 * use") and give its copies back.
 *
 * It first waits until hello#0 is gone: whichever client maps a page when no slot is left is
 * refused, and in this image that must be this one. */
#include "pager_app.h"
#include "probe.h"

#define PAGES 256UL

/* Not zero, so it stays in .rodata (and in the file) rather than turning into .bss. */
static const unsigned char table[PAGES][PAGER_PAGE_SIZE] __attribute__((aligned(PAGER_PAGE_SIZE))) = {
    [0 ... PAGES - 1] = {0x5a},
};

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    probe_wait_until_gone("hello", 0);
    struct pager_line line = {0};
    pager_line_add(&line, "reading ");
    pager_line_add_unsigned(&line, PAGES);
    pager_line_add(&line, " image pages");
    pager_line_print(&line);
    const volatile unsigned char(*image)[PAGER_PAGE_SIZE] = table;
    unsigned long sum = 0;
    for (unsigned long page = 0; page < PAGES; page++)
        sum += image[page][0];
    pager_line_add(&line, "FAILED: all ");
    pager_line_add_unsigned(&line, PAGES);
    pager_line_add(&line, " pages were mapped (sum ");
    pager_line_add_unsigned(&line, sum);
    pager_line_add(&line, ")");
    pager_line_print(&line);
    pager_exit(1);
}
