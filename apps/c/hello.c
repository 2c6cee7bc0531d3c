/* c-hello: the C counterpart of the Rust hello app, checking rodata, data and bss as the pager
 * fills them. Each table spans more than one page; every read and write goes through a volatile
 * pointer so the bytes come from the pages the pager mapped, not from the compiler's constants. */
#include "pager_app.h"

#define TABLE_WORDS 600
#define BSS_WORDS 1024
#define RODATA_SEED 0x0D0DA7A000000000UL
#define DATA_SEED 0x0DA7A00000000000UL

/* A value for each word that no two words or tables share. */
#define PATTERN(seed, index) (((unsigned long)(index) + 1) * 0x9E3779B97F4A7C15UL ^ (seed))

/* C has no loops in initialisers: these spell out 600 words of a table. */
#define ROW8(seed, base)                                                                              \
    PATTERN(seed, (base) + 0), PATTERN(seed, (base) + 1), PATTERN(seed, (base) + 2),                   \
        PATTERN(seed, (base) + 3), PATTERN(seed, (base) + 4), PATTERN(seed, (base) + 5),               \
        PATTERN(seed, (base) + 6), PATTERN(seed, (base) + 7)
#define ROW40(seed, base)                                                                             \
    ROW8(seed, (base) + 0), ROW8(seed, (base) + 8), ROW8(seed, (base) + 16), ROW8(seed, (base) + 24), \
        ROW8(seed, (base) + 32)
#define ROW200(seed, base)                                                                            \
    ROW40(seed, (base) + 0), ROW40(seed, (base) + 40), ROW40(seed, (base) + 80),                       \
        ROW40(seed, (base) + 120), ROW40(seed, (base) + 160)
#define TABLE600(seed) ROW200(seed, 0), ROW200(seed, 200), ROW200(seed, 400)

static const unsigned long rodata_table[TABLE_WORDS] = {TABLE600(RODATA_SEED)};
static unsigned long data_table[TABLE_WORDS] = {TABLE600(DATA_SEED)};
static unsigned long bss_table[BSS_WORDS];

static int mismatch(const char *what, unsigned long index, unsigned long expected, unsigned long found)
{
    struct pager_line line = {0};
    pager_line_add(&line, what);
    pager_line_add(&line, " word ");
    pager_line_add_unsigned(&line, index);
    pager_line_add(&line, ": expected ");
    pager_line_add_hex(&line, expected);
    pager_line_add(&line, ", found ");
    pager_line_add_hex(&line, found);
    pager_line_print(&line);
    return 1;
}

static int check_rodata(void)
{
    const volatile unsigned long *table = rodata_table;
    for (unsigned long i = 0; i < TABLE_WORDS; i++)
        if (table[i] != PATTERN(RODATA_SEED, i))
            return mismatch("rodata", i, PATTERN(RODATA_SEED, i), table[i]);
    return 0;
}

static int check_data(void)
{
    volatile unsigned long *table = data_table;
    for (unsigned long i = 0; i < TABLE_WORDS; i++)
        if (table[i] != PATTERN(DATA_SEED, i))
            return mismatch("data (initial)", i, PATTERN(DATA_SEED, i), table[i]);
    for (unsigned long i = 0; i < TABLE_WORDS; i++)
        table[i] = ~PATTERN(DATA_SEED, i);
    for (unsigned long i = 0; i < TABLE_WORDS; i++)
        if (table[i] != ~PATTERN(DATA_SEED, i))
            return mismatch("data (written)", i, ~PATTERN(DATA_SEED, i), table[i]);
    return 0;
}

static int check_bss(void)
{
    volatile unsigned long *table = bss_table;
    for (unsigned long i = 0; i < BSS_WORDS; i++)
        if (table[i] != 0)
            return mismatch("bss (initial)", i, 0, table[i]);
    for (unsigned long i = 0; i < BSS_WORDS; i++)
        table[i] = PATTERN(0, i);
    for (unsigned long i = 0; i < BSS_WORDS; i++)
        if (table[i] != PATTERN(0, i))
            return mismatch("bss (written)", i, PATTERN(0, i), table[i]);
    return 0;
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)instance, (void)heap_base, (void)heap_size, (void)client;
    static const struct {
        const char *name;
        int (*check)(void);
    } checks[] = {{"rodata", check_rodata}, {"data", check_data}, {"bss", check_bss}};
    int failures = 0;
    for (unsigned long i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        struct pager_line line = {0};
        pager_line_add(&line, checks[i].name);
        if (checks[i].check() == 0) {
            pager_line_add(&line, ": ok");
        } else {
            pager_line_add(&line, ": FAILED");
            failures++;
        }
        pager_line_print(&line);
    }
    pager_print(failures == 0 ? "c-hello: ok\n" : "c-hello: FAILED\n");
    pager_exit(failures == 0 ? 0 : 1);
}
