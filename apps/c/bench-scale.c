/* bench-scale: the client of `cargo xtask bench`'s scale table (manifests/bench/scale/). It writes
 * one byte in every page of its heap (the manifest's `heap`), in ascending order, so each page is
 * one zero fault on a fresh frame and stays resident; then it waits at a barrier until every
 * instance has done the same (the `barrier` region: a count, and the number of instances in the
 * manifest's `argument`), so no client exits and gives its frames back while another still
 * faults, and every client's pages are resident at once. Then it reads its pages back and exits.
 * Many instances at once measure the pager's cost per fault against the number of clients; one
 * client with a large heap, against the pages resident in it.
 *   bench: scale pages=<pages> */
#include "pager_app.h"

/* Where the manifest attaches the barrier region. */
#define BARRIER 0x10000000UL

/* The manifest's argument: the number of instances, in decimal. */
static unsigned long instances(void)
{
    struct pager_message message = {{0, 0, 0, 0}};
    pager_call(PAGER_LABEL_ARGUMENT, 1, &message);
    unsigned long length = message.mr[0] < 24 ? message.mr[0] : 24, value = 0;
    for (unsigned long i = 0; i < length; i++) {
        unsigned char digit = (unsigned char)(message.mr[1 + i / 8] >> (8 * (i % 8)));
        if (digit < '0' || digit > '9')
            return 0;
        value = value * 10 + (digit - '0');
    }
    return value;
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)client;
    volatile unsigned char *heap = (volatile unsigned char *)heap_base;
    unsigned long pages = (unsigned long)heap_size / PAGER_PAGE_SIZE;
    unsigned long expected = instances();
    if (expected == 0) {
        pager_print("FAILED: the argument is not the number of instances\n");
        pager_exit(1);
    }
    unsigned char mark = (unsigned char)(instance + 1);
    for (unsigned long page = 0; page < pages; page++)
        heap[page * PAGER_PAGE_SIZE + page % PAGER_PAGE_SIZE] = mark;
    unsigned long *arrived = (unsigned long *)BARRIER;
    __atomic_fetch_add(arrived, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(arrived, __ATOMIC_SEQ_CST) < expected)
        pager_yield();
    for (unsigned long page = 0; page < pages; page++) {
        if (heap[page * PAGER_PAGE_SIZE + page % PAGER_PAGE_SIZE] != mark) {
            pager_print("FAILED: a page read back wrong\n");
            pager_exit(1);
        }
    }
    struct pager_line line = {0};
    pager_line_add(&line, "bench: scale pages=");
    pager_line_add_unsigned(&line, pages);
    pager_line_print(&line);
    pager_exit(0);
}
