/* consumer: waits for the producer's ready flag in the `ring` region, then checks the ring data
 * and the page the producer shared into it at SHARED_ADDRESS (including a word written after the
 * share), answers in that page and lowers the flag. */
#include "pager_app.h"
#include "shared_ring.h"

static __attribute__((noreturn)) void fail(const char *why, unsigned long index, unsigned long value)
{
    struct pager_line line = {0};
    pager_line_add(&line, "FAILED: ");
    pager_line_add(&line, why);
    pager_line_add_unsigned(&line, index);
    pager_line_add(&line, ": ");
    pager_line_add_hex(&line, value);
    pager_line_print(&line);
    pager_exit(1);
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    volatile unsigned long *ring = ring_words();
    unsigned long waited = 0;
    while (__atomic_load_n(&ring[RING_FLAG], __ATOMIC_ACQUIRE) != RING_READY) {
        if (++waited == WAIT_LIMIT)
            fail("no ready flag after yields: ", WAIT_LIMIT, ring[RING_FLAG]);
        pager_yield();
    }
    for (unsigned long i = 0; i < RING_DATA_WORDS; i++)
        if (ring[RING_DATA + i] != RING_PATTERN(i))
            fail("ring word ", i, ring[RING_DATA + i]);
    pager_line_add(&line, "ring: ok");
    pager_line_print(&line);

    unsigned long offset = ring[RING_PAGE_OFFSET];
    volatile unsigned long *page = (volatile unsigned long *)pager_opaque(SHARED_ADDRESS + offset);
    for (unsigned long i = 0; i < PAGE_LAST; i++)
        if (page[i] != PAGE_PATTERN(i))
            fail("shared page word ", i, page[i]);
    if (page[PAGE_LAST] != AFTER_SHARE)
        fail("shared page word written after the share, ", PAGE_LAST, page[PAGE_LAST]);
    pager_line_add(&line, "shared page: ok");
    pager_line_print(&line);

    page[PAGE_ACK] = ACK;
    __atomic_store_n(&ring[RING_FLAG], RING_DONE, __ATOMIC_RELEASE);
    pager_line_add(&line, "consumer: ok");
    pager_line_print(&line);
    pager_exit(0);
}
