/* pager_app.h: the app ABI of the seL4 pager (docs/app-abi.md) for C programs, header only.
 *
 * A C app defines the entry point itself, an ordinary function entered as if it had been called:
 *
 *     #include "pager_app.h"
 *     void _start(long instance, long heap_base, long heap_size, long client)
 *     {
 *         pager_print("hello\n");
 *         pager_exit(0);
 *     }
 *
 * and is built freestanding, static and non-PIE (the flags are in apps/c/programs.toml). The
 * calls are seL4_Call on CSpace slot 1, written here with inline assembly that mirrors the Rust
 * binding (sel4/src/syscall.rs): rdx the syscall number, rdi the cap, rsi the message info,
 * r10, r8, r9, r15 message registers 0-3; message registers 4 and up are in the IPC buffer, which
 * the kernel makes the gs base. The kernel clobbers rcx and r11 and does not restore rsp, so rsp
 * is parked in r12 across the instruction. */
#ifndef PAGER_APP_H
#define PAGER_APP_H

/* seL4 5.0 x86_64 syscall number of Call (include/api/syscall.xml). */
#define PAGER_SYSCALL_CALL (-1L)

/* The app ABI's numbers. The `abi` crate (abi/src/lib.rs) is their source of truth; its test
 * abi/tests/c_header.rs checks every define below against it. */

/* CSpace slot of the pager's endpoint. */
#define PAGER_ENDPOINT 1UL

#define PAGER_LABEL_EXIT 0x100UL
#define PAGER_LABEL_PRINT 0x101UL
#define PAGER_LABEL_SHARE 0x102UL
#define PAGER_LABEL_ADVISE 0x103UL
/* MR0: offset; reply MR0: the app's argument's length, MR1-MR3: 24 bytes of it from the offset. */
#define PAGER_LABEL_ARGUMENT 0x104UL
/* Longest app argument (the manifest's `argument`). */
#define PAGER_ARGUMENT_LIMIT 128UL

/* Most bytes one print call carries. */
#define PAGER_PRINT_LIMIT 928UL
/* Longest app name (names travel in fixed fields of the boot image). */
#define PAGER_NAME_LIMIT 32UL
#define PAGER_PAGE_SIZE 4096UL
/* The reply's MR0 to an unknown or malformed call. */
#define PAGER_UNKNOWN_CALL 0xFFFFFFFFFFFFFFFFUL
/* The IPC buffer page, reserved in every client. */
#define PAGER_IPC_BUFFER_ADDRESS 0xBFFFF000UL

/* Share error codes (the reply's MR0). */
#define PAGER_SHARE_OK 0
#define PAGER_SHARE_NO_SUCH_DESTINATION 1
#define PAGER_SHARE_NO_AREA 2
#define PAGER_SHARE_DOES_NOT_FIT 3
#define PAGER_SHARE_TOO_MANY_SHARED 4
/* Not permitted: my app's `share_to` in the manifest does not name the destination app. */
#define PAGER_SHARE_NOT_PERMITTED 5

/* Advice kinds (pager_advise's `advice`, MR2). */
#define PAGER_ADVISE_WILL_NEED 0
#define PAGER_ADVISE_DONT_NEED 1
#define PAGER_ADVISE_SEQUENTIAL 2
#define PAGER_ADVISE_RANDOM 3
/* Pages one fault maps in an area advised sequential. */
#define PAGER_ADVISE_SEQUENTIAL_PAGES 16
/* Advise status codes (the reply's MR0; MR1 is the pages resolved or dropped). */
#define PAGER_ADVISE_OK 0
#define PAGER_ADVISE_OUTSIDE_AREAS 1
#define PAGER_ADVISE_INVALID 2
#define PAGER_ADVISE_NO_MEMORY 3

/* Message labels are 20 bits in seL4 5.0: the kernel drops the bits above, so 0x100100 would
 * arrive as exit. pager_call refuses such a label without calling and sets MR0 to this (the
 * pager's own answer to an unknown call). */
#define PAGER_LABEL_LIMIT (1UL << 20)
#define PAGER_LABEL_REFUSED (~0UL)

/* GCC expects these four even when freestanding (it may call them for struct copies and large
 * initialisers). Weak, so a program built from several files links once; the build flags keep
 * GCC from turning these very loops back into calls (-fno-tree-loop-distribute-patterns). */
__attribute__((weak)) void *memset(void *destination, int value, unsigned long length)
{
    unsigned char *bytes = destination;
    for (unsigned long i = 0; i < length; i++)
        bytes[i] = (unsigned char)value;
    return destination;
}

__attribute__((weak)) void *memcpy(void *destination, const void *source, unsigned long length)
{
    unsigned char *to = destination;
    const unsigned char *from = source;
    for (unsigned long i = 0; i < length; i++)
        to[i] = from[i];
    return destination;
}

__attribute__((weak)) void *memmove(void *destination, const void *source, unsigned long length)
{
    unsigned char *to = destination;
    const unsigned char *from = source;
    if (to < from) {
        for (unsigned long i = 0; i < length; i++)
            to[i] = from[i];
    } else {
        for (unsigned long i = length; i > 0; i--)
            to[i - 1] = from[i - 1];
    }
    return destination;
}

__attribute__((weak)) int memcmp(const void *left, const void *right, unsigned long length)
{
    const unsigned char *a = left, *b = right;
    for (unsigned long i = 0; i < length; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* The entry point every C app defines. */
void _start(long instance, long heap_base, long heap_size, long client) __attribute__((noreturn));

/* Message registers 0-3, sent and received in CPU registers. */
struct pager_message {
    unsigned long mr[4];
};

/* seL4_Call on the pager's endpoint with `length` message registers (label << 12 | length is
 * the message info word); the reply's message registers 0-3 replace `message`. A label of
 * PAGER_LABEL_LIMIT or more is refused (see there). */
static inline void pager_call(unsigned long label, unsigned long length, struct pager_message *message)
{
    if (label >= PAGER_LABEL_LIMIT) {
        message->mr[0] = PAGER_LABEL_REFUSED;
        return;
    }
    register unsigned long mr0 __asm__("r10") = message->mr[0];
    register unsigned long mr1 __asm__("r8") = message->mr[1];
    register unsigned long mr2 __asm__("r9") = message->mr[2];
    register unsigned long mr3 __asm__("r15") = message->mr[3];
    unsigned long number = (unsigned long)PAGER_SYSCALL_CALL;
    unsigned long cap = PAGER_ENDPOINT;
    unsigned long info = label << 12 | (length & 0x7f);
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp"
                     : "+d"(number), "+D"(cap), "+S"(info), "+r"(mr0), "+r"(mr1), "+r"(mr2), "+r"(mr3)
                     :
                     : "rcx", "r11", "r12", "memory");
    message->mr[0] = mr0;
    message->mr[1] = mr1;
    message->mr[2] = mr2;
    message->mr[3] = mr3;
}

/* Sets message register `index` (4 and up) in this thread's IPC buffer: word 1 + index. */
static inline void pager_set_message_register(unsigned long index, unsigned long value)
{
    unsigned long offset = 8 * (1 + index);
    __asm__ volatile("movq %0, %%gs:(%1)" : : "r"(value), "r"(offset) : "memory");
}

/* Packs `length` bytes little-endian, 8 per word, into message registers from `first` on;
 * returns the number of words. */
static inline unsigned long pager_pack(const char *bytes, unsigned long length, unsigned long first,
                                       struct pager_message *message)
{
    unsigned long words = (length + 7) / 8;
    for (unsigned long word = 0; word < words; word++) {
        unsigned long value = 0;
        for (unsigned long byte = 0; byte < 8 && word * 8 + byte < length; byte++)
            value |= (unsigned long)(unsigned char)bytes[word * 8 + byte] << (8 * byte);
        unsigned long index = first + word;
        if (index < 4)
            message->mr[index] = value;
        else
            pager_set_message_register(index, value);
    }
    return words;
}

/* Ends this client with `code`; its frames return to the pager's pool. */
static inline __attribute__((noreturn)) void pager_exit(long code)
{
    for (;;) {
        /* The pager does not reply to exit; were it to, asking again is all a client can do. */
        struct pager_message message = {{(unsigned long)code, 0, 0, 0}};
        pager_call(PAGER_LABEL_EXIT, 1, &message);
    }
}

/* Prints `length` bytes as they are, one call per PAGER_PRINT_LIMIT bytes. The pager prefixes
 * each line with "[<app>#<instance>] ". */
static inline void pager_write(const char *bytes, unsigned long length)
{
    while (length > 0) {
        unsigned long chunk = length < PAGER_PRINT_LIMIT ? length : PAGER_PRINT_LIMIT;
        struct pager_message message = {{chunk, 0, 0, 0}};
        unsigned long words = pager_pack(bytes, chunk, 1, &message);
        pager_call(PAGER_LABEL_PRINT, 1 + words, &message);
        bytes += chunk;
        length -= chunk;
    }
}

static inline unsigned long pager_string_length(const char *text)
{
    unsigned long length = 0;
    while (text[length] != '\0')
        length++;
    return length;
}

/* Prints a NUL-terminated string as it is (no newline added). */
static inline void pager_print(const char *text)
{
    pager_write(text, pager_string_length(text));
}

/* A line of text built up in pieces and printed with one call, so the pager gets it whole. Text
 * past PAGER_PRINT_LIMIT bytes is dropped. */
struct pager_line {
    unsigned long length;
    char bytes[PAGER_PRINT_LIMIT];
};

static inline void pager_line_add_bytes(struct pager_line *line, const char *bytes, unsigned long length)
{
    for (unsigned long i = 0; i < length && line->length < PAGER_PRINT_LIMIT; i++)
        line->bytes[line->length++] = bytes[i];
}

static inline void pager_line_add(struct pager_line *line, const char *text)
{
    pager_line_add_bytes(line, text, pager_string_length(text));
}

/* Adds an unsigned number in decimal. */
static inline void pager_line_add_unsigned(struct pager_line *line, unsigned long value)
{
    char digits[20];
    unsigned long count = 0;
    do {
        digits[sizeof digits - 1 - count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    pager_line_add_bytes(line, digits + sizeof digits - count, count);
}

/* Adds an unsigned number as 0x and hex digits. */
static inline void pager_line_add_hex(struct pager_line *line, unsigned long value)
{
    char digits[18];
    unsigned long count = 0;
    do {
        digits[sizeof digits - 1 - count++] = "0123456789abcdef"[value & 0xf];
        value >>= 4;
    } while (value != 0);
    digits[sizeof digits - 1 - count++] = 'x';
    digits[sizeof digits - 1 - count++] = '0';
    pager_line_add_bytes(line, digits + sizeof digits - count, count);
}

/* Prints the line with a newline after it (in place of its last byte when it is full) and
 * empties it. */
static inline void pager_line_print(struct pager_line *line)
{
    if (line->length == PAGER_PRINT_LIMIT)
        line->length--;
    pager_line_add(line, "\n");
    pager_write(line->bytes, line->length);
    line->length = 0;
}

/* Shares the area holding `my_address` into instance `destination_instance` of the app named
 * `destination_app`, at the page-aligned `destination_address` there. Returns PAGER_SHARE_OK or
 * one of the PAGER_SHARE_* error codes. */
static inline unsigned long pager_share(unsigned long my_address, const char *destination_app,
                                        unsigned long destination_instance, unsigned long destination_address)
{
    unsigned long name_length = pager_string_length(destination_app);
    if (name_length == 0 || name_length > PAGER_NAME_LIMIT)
        return PAGER_SHARE_NO_SUCH_DESTINATION;
    struct pager_message message = {{my_address, destination_address, destination_instance, name_length}};
    unsigned long words = pager_pack(destination_app, name_length, 4, &message);
    pager_call(PAGER_LABEL_SHARE, 4 + words, &message);
    return message.mr[0];
}

/* Advises the pager about `length` bytes from the page-aligned `start` (PAGER_ADVISE_WILL_NEED,
 * _DONT_NEED, _SEQUENTIAL or _RANDOM; docs/app-abi.md). Returns PAGER_ADVISE_OK or one of the
 * PAGER_ADVISE_* error codes; `pages`, when not null, receives the pages resolved or dropped. */
static inline unsigned long pager_advise(unsigned long start, unsigned long length, unsigned long advice,
                                         unsigned long *pages)
{
    struct pager_message message = {{start, length, advice, 0}};
    pager_call(PAGER_LABEL_ADVISE, 3, &message);
    if (pages)
        *pages = message.mr[1];
    return message.mr[0];
}

/* Gives up the rest of this time slice (seL4_Yield, syscall -7). */
static inline void pager_yield(void)
{
    unsigned long number = (unsigned long)-7L;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp"
                     : "+d"(number)
                     :
                     : "rcx", "r11", "r12", "rdi", "rsi", "r10", "r8", "r9", "r15", "memory");
}

/* An address the compiler cannot see through, so a deliberately bad access is emitted as
 * written rather than optimised into a trap. */
static inline unsigned long pager_opaque(unsigned long value)
{
    __asm__ volatile("" : "+r"(value));
    return value;
}

#endif
