/* shared_ring.h: what the producer and consumer apps agree on (manifests/shared.toml).
 *
 * The region `ring` is attached to both at RING_ADDRESS, writable. The producer shares the area
 * holding its page of .bss into consumer#0 at SHARED_ADDRESS; the area is the producer's whole
 * writable segment, so it also tells the consumer where in that area the page lies. */
#ifndef SHARED_RING_H
#define SHARED_RING_H

#define RING_ADDRESS 0x10000000UL
#define SHARED_ADDRESS 0x20000000UL

/* Ring words. */
#define RING_FLAG 0        /* 0, then READY from the producer, then DONE from the consumer */
#define RING_PAGE_OFFSET 1 /* where the shared page lies in the shared area */
#define RING_DATA 8        /* first of RING_DATA_WORDS words of data */
#define RING_DATA_WORDS 64

#define RING_READY 0x5245414459000000UL
#define RING_DONE 0x444f4e4500000000UL

#define PAGE_WORDS (PAGER_PAGE_SIZE / 8)
/* The last word of the page, written by the producer after the share. */
#define PAGE_LAST (PAGE_WORDS - 1)
/* The word the consumer writes back. */
#define PAGE_ACK 1
#define AFTER_SHARE 0x4146544552000000UL
#define ACK 0x41434b0000000000UL

#define PAGE_PATTERN(index) (0x5348415245000000UL | (unsigned long)(index))
#define RING_PATTERN(index) (0x52494e4700000000UL | (unsigned long)(index))

/* Yields to wait for the other side, at most this many times. */
#define WAIT_LIMIT 200000UL

static inline volatile unsigned long *ring_words(void)
{
    return (volatile unsigned long *)pager_opaque(RING_ADDRESS);
}

#endif
