/* producer: fills a page of its .bss, shares the area holding it into consumer#0, then raises a
 * ready flag in the `ring` region they both attach; waits for the consumer's answer, written
 * into the shared page, to check that both see one frame. */
#include "pager_app.h"
#include "shared_ring.h"

#define PT_LOAD 1

/* The ELF file header and program headers, which the linker maps with the first segment. */
struct elf_header {
    unsigned char ident[16];
    unsigned short type, machine;
    unsigned int version;
    unsigned long entry, program_header_offset, section_header_offset;
    unsigned int flags;
    unsigned short header_size, program_header_size, program_header_count;
    unsigned short section_header_size, section_header_count, section_name_index;
};

struct program_header {
    unsigned int type, flags;
    unsigned long offset, vaddr, paddr, file_size, memory_size, align;
};

extern const struct elf_header __ehdr_start;

static volatile unsigned long shared_page[PAGE_WORDS] __attribute__((aligned(PAGER_PAGE_SIZE)));

static __attribute__((noreturn)) void fail(const char *why, unsigned long value)
{
    struct pager_line line = {0};
    pager_line_add(&line, "FAILED: ");
    pager_line_add(&line, why);
    pager_line_add_hex(&line, value);
    pager_line_print(&line);
    pager_exit(1);
}

/* The pager's area for an ELF segment starts at the page holding p_vaddr: find the segment
 * holding `address` in my own program headers. */
static unsigned long area_base(unsigned long address)
{
    const struct program_header *headers =
        (const struct program_header *)((const char *)&__ehdr_start + __ehdr_start.program_header_offset);
    for (unsigned long i = 0; i < __ehdr_start.program_header_count; i++) {
        const struct program_header *header = &headers[i];
        if (header->type == PT_LOAD && address >= header->vaddr &&
            address < header->vaddr + header->memory_size)
            return header->vaddr & ~(PAGER_PAGE_SIZE - 1);
    }
    fail("no segment holds ", address);
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    struct pager_line line = {0};
    for (unsigned long i = 0; i < PAGE_WORDS; i++)
        shared_page[i] = PAGE_PATTERN(i);

    unsigned long address = (unsigned long)shared_page;
    unsigned long offset = address - area_base(address);
    unsigned long status = pager_share(address, "consumer", 0, SHARED_ADDRESS);
    if (status != PAGER_SHARE_OK)
        fail("share returned ", status);
    pager_line_add(&line, "shared my page into consumer#0 at ");
    pager_line_add_hex(&line, SHARED_ADDRESS);
    pager_line_print(&line);
    /* Written after the share: the consumer must see it too. */
    shared_page[PAGE_LAST] = AFTER_SHARE;

    volatile unsigned long *ring = ring_words();
    for (unsigned long i = 0; i < RING_DATA_WORDS; i++)
        ring[RING_DATA + i] = RING_PATTERN(i);
    ring[RING_PAGE_OFFSET] = offset;
    __atomic_store_n(&ring[RING_FLAG], RING_READY, __ATOMIC_RELEASE);

    unsigned long waited = 0;
    while (__atomic_load_n(&ring[RING_FLAG], __ATOMIC_ACQUIRE) != RING_DONE) {
        if (++waited == WAIT_LIMIT)
            fail("no answer from the consumer after this many yields: ", WAIT_LIMIT);
        pager_yield();
    }
    if (shared_page[PAGE_ACK] != ACK)
        fail("the consumer's answer is not in my page: ", shared_page[PAGE_ACK]);
    pager_line_add(&line, "consumer answered in my page");
    pager_line_print(&line);
    pager_line_add(&line, "producer: ok");
    pager_line_print(&line);
    pager_exit(0);
}
