/* bench-faults: the client's side of `cargo xtask bench`'s per-class figures. It touches pages of
 * each fault class and reads the time-stamp counter around every touch, so each sample is the
 * whole round trip: the trap, the fault IPC, the pager's work, the reply and the restarted
 * access. The cost of the same access to a page already mapped (`warm`) is subtracted.
 *
 * Classes: a read of a read-only .rodata page (the image's frame, no copy), a write to a .data
 * page (a copy), a write to a .bss page (a zeroed frame), a write to the page where .data's file
 * bytes end (straddling: copied and zeroed), and a write through the second attachment of a
 * region whose pages the first attachment created (a shared-pagemap hit; the first touches are
 * reported as `shared-first`).
 *
 * One line per class:
 *   bench: class=<c> samples=<n> median=<ticks> min=<ticks> max=<ticks> sum=<ticks> warm=<ticks>
 * The manifest (manifests/bench/faults.toml) attaches the region at REGION_A and REGION_B. */
#include "pager_app.h"
#include "bench.h"

#define PAGES 64
#define REGION_A 0x10000000UL
#define REGION_B 0x20000000UL

/* Initialised, so both live in the file: .rodata pages are the image's own, .data pages copies.
 * (Not volatile: GCC puts a const volatile object in .data; reads go through volatile pointers.)
 * The tail makes .data's file bytes end inside a page, which is then the straddling one. */
static const unsigned char rodata_pages[PAGES][PAGER_PAGE_SIZE] __attribute__((aligned(PAGER_PAGE_SIZE))) = {{1}};
static volatile struct {
    unsigned char pages[PAGES][PAGER_PAGE_SIZE];
    unsigned char tail[64];
} data __attribute__((aligned(PAGER_PAGE_SIZE))) = {{{1}}, {1}};
static volatile unsigned char bss_pages[PAGES][PAGER_PAGE_SIZE] __attribute__((aligned(PAGER_PAGE_SIZE)));

/* The end of .data's file bytes (GNU ld defines it). */
extern unsigned char _edata[];

static inline unsigned long time_read(const volatile unsigned char *byte)
{
    unsigned long start = bench_timestamp();
    (void)*byte;
    return bench_timestamp() - start;
}

static inline unsigned long time_write(volatile unsigned char *byte)
{
    unsigned long start = bench_timestamp();
    *byte = 1;
    return bench_timestamp() - start;
}

static void sort(unsigned long *values, unsigned long count)
{
    for (unsigned long i = 1; i < count; i++) {
        unsigned long value = values[i], j = i;
        for (; j > 0 && values[j - 1] > value; j--)
            values[j] = values[j - 1];
        values[j] = value;
    }
}

/* Prints a class's samples, less the warm cost of the same access. */
static void report(const char *class, unsigned long *samples, unsigned long count, unsigned long warm)
{
    unsigned long sum = 0;
    for (unsigned long i = 0; i < count; i++) {
        samples[i] = samples[i] > warm ? samples[i] - warm : 0;
        sum += samples[i];
    }
    sort(samples, count);
    struct pager_line line = {0};
    pager_line_add(&line, "bench: class=");
    pager_line_add(&line, class);
    pager_line_add(&line, " samples=");
    pager_line_add_unsigned(&line, count);
    pager_line_add(&line, " median=");
    pager_line_add_unsigned(&line, samples[count / 2]);
    pager_line_add(&line, " min=");
    pager_line_add_unsigned(&line, samples[0]);
    pager_line_add(&line, " max=");
    pager_line_add_unsigned(&line, samples[count - 1]);
    pager_line_add(&line, " sum=");
    pager_line_add_unsigned(&line, sum);
    pager_line_add(&line, " warm=");
    pager_line_add_unsigned(&line, warm);
    pager_line_print(&line);
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    unsigned long samples[PAGES];
    unsigned long edata = (unsigned long)_edata;
    if (edata % PAGER_PAGE_SIZE == 0) {
        pager_print("FAILED: .data ends on a page boundary, so no page straddles its file end\n");
        pager_exit(1);
    }

    for (unsigned long page = 0; page < PAGES; page++)
        samples[page] = time_read((const volatile unsigned char *)&rodata_pages[page][0]);
    report("image", samples, PAGES, time_read((const volatile unsigned char *)&rodata_pages[0][8]));

    for (unsigned long page = 0; page < PAGES; page++)
        samples[page] = time_write(&data.pages[page][0]);
    report("copy", samples, PAGES, time_write(&data.pages[0][8]));

    for (unsigned long page = 0; page < PAGES; page++)
        samples[page] = time_write(&bss_pages[page][0]);
    report("zero", samples, PAGES, time_write(&bss_pages[0][8]));

    volatile unsigned char *straddle = (volatile unsigned char *)(edata - 1);
    samples[0] = time_write(straddle);
    report("mixed", samples, 1, time_write(straddle));

    volatile unsigned char *first = (volatile unsigned char *)REGION_A;
    volatile unsigned char *second = (volatile unsigned char *)REGION_B;
    for (unsigned long page = 0; page < PAGES; page++)
        samples[page] = time_write(&first[page * PAGER_PAGE_SIZE]);
    report("shared-first", samples, PAGES, time_write(&first[8]));
    for (unsigned long page = 0; page < PAGES; page++)
        samples[page] = time_write(&second[page * PAGER_PAGE_SIZE]);
    report("shared", samples, PAGES, time_write(&second[8]));

    /* The two attachments are one region: what one wrote, the other reads. */
    first[PAGER_PAGE_SIZE + 16] = 0x5a;
    if (second[PAGER_PAGE_SIZE + 16] != 0x5a || data.pages[1][1] != 0 || ((const volatile unsigned char *)rodata_pages)[0] != 1) {
        pager_print("FAILED: a page read back wrong\n");
        pager_exit(1);
    }
    pager_print("bench-faults: ok\n");
    pager_exit(0);
}
