/* hostile: a client that attacks the system around the pager instead of its memory
 * (manifests/hostile.toml). One source, built as several programs (apps/c/programs.toml) that each
 * define HOSTILE_MODE; where a mode has variants, the instance number picks one. Every attack must
 * end in a report about this client alone while the others go on.
 *
 *   RECEIVE       receive on the pager's endpoint (instance 0 Recv, 1 NBRecv, 2 ReplyRecv), to take
 *                 other clients' messages: the cap has no Read right, so a capability fault.
 *   DEBUG_CALL    a debug syscall (0 DebugPutChar writing a fake report line, 1 DebugHalt,
 *                 2 DebugCapIdentify, 3 DebugSnapshot, 4 DebugNameThread): none exists in the
 *                 release kernel, so an unknown-syscall fault.
 *   SHARE         share a page into hostile-spin#0 (alive: it spins until its time limit), which
 *                 my manifest entry's `share_to` does not name: the call answers
 *                 PAGER_SHARE_NOT_PERMITTED and I exit 0.
 *   SPIN          spin forever: stopped by its time limit.
 *   FORGE_VM      call my own endpoint with a VM fault's label for an untouched page of my .bss:
 *                 the pager can only take it as my fault, maps my page and replies; I exit 0.
 *   FORGE_CAP     call it with a capability fault's label: the pager stops me, nobody else.
 *   FORGE_LABEL   ask the header to send a label above 20 bits (0x100100, which seL4 5.0 would
 *                 truncate to exit): it refuses without calling; I exit 0. */
#include "pager_app.h"

#define MODE_RECEIVE 1
#define MODE_DEBUG_CALL 2
#define MODE_SHARE 3
#define MODE_SPIN 4
#define MODE_FORGE_VM 5
#define MODE_FORGE_CAP 6
#define MODE_FORGE_LABEL 7

#ifndef HOSTILE_MODE
#error "define HOSTILE_MODE (see apps/c/programs.toml)"
#endif

/* seL4 5.0 syscall numbers (include/api/syscall.xml): the API ones, then the debug ones, which
 * exist in a debug kernel only. */
#define SYSCALL_REPLY_RECV (-2L)
#define SYSCALL_RECV (-5L)
#define SYSCALL_NB_RECV (-8L)
#define SYSCALL_DEBUG_PUT_CHAR (-9L)

/* Fault labels (libsel4 seL4_FaultType): capability fault 1, VM fault 5. */
#define LABEL_CAP_FAULT 1UL
#define LABEL_VM_FAULT 5UL

static volatile unsigned long untouched[512] __attribute__((aligned(PAGER_PAGE_SIZE)));

static void say(const char *text)
{
    struct pager_line line = {0};
    pager_line_add(&line, text);
    pager_line_print(&line);
}

static __attribute__((noreturn)) void failed(const char *text)
{
    struct pager_line line = {0};
    pager_line_add(&line, "FAILED: ");
    pager_line_add(&line, text);
    pager_line_print(&line);
    pager_exit(1);
}

/* A raw syscall on `cap` with message info 0 and `byte` in rdi for DebugPutChar. */
static void raw_syscall(long number, unsigned long rdi)
{
    unsigned long rdx = (unsigned long)number;
    unsigned long info = 0;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp"
                     : "+d"(rdx), "+D"(rdi), "+S"(info)
                     :
                     : "rcx", "r11", "r12", "r10", "r8", "r9", "r15", "memory");
}

void _start(long instance, long heap_base, long heap_size, long client)
{
    (void)heap_base, (void)heap_size, (void)client;
#if HOSTILE_MODE == MODE_RECEIVE
    static const long calls[3] = {SYSCALL_RECV, SYSCALL_NB_RECV, SYSCALL_REPLY_RECV};
    say("receiving on the pager's endpoint");
    raw_syscall(calls[instance % 3], PAGER_ENDPOINT);
    failed("a receive on the pager's endpoint returned");
#elif HOSTILE_MODE == MODE_DEBUG_CALL
    say("making a debug syscall");
    if (instance == 0) {
        static const char fake[] = "[pager] hello#0 exited with 0\n";
        for (unsigned long i = 0; fake[i] != '\0'; i++)
            raw_syscall(SYSCALL_DEBUG_PUT_CHAR, (unsigned char)fake[i]);
    } else {
        raw_syscall(SYSCALL_DEBUG_PUT_CHAR - instance, 0);
    }
    failed("a debug syscall returned");
#elif HOSTILE_MODE == MODE_SHARE
    (void)instance;
    untouched[0] = 1;
    unsigned long status = pager_share((unsigned long)untouched, "hostile-spin", 0, 0x20000000UL);
    struct pager_line line = {0};
    pager_line_add(&line, "share into hostile-spin#0 without consent: status ");
    pager_line_add_unsigned(&line, status);
    pager_line_print(&line);
    pager_exit(status == PAGER_SHARE_NOT_PERMITTED ? 0 : 1);
#elif HOSTILE_MODE == MODE_SPIN
    (void)instance;
    say("spinning");
    for (;;)
        __asm__ volatile("" ::: "memory");
#elif HOSTILE_MODE == MODE_FORGE_VM
    (void)instance;
    /* Claim a user write fault at my untouched page (x86 error code 0x6). */
    struct pager_message message = {{0x401000UL, (unsigned long)untouched, 0, 0x6}};
    pager_call(LABEL_VM_FAULT, 4, &message);
    untouched[1] = 2;
    say(untouched[1] == 2 ? "forged a VM fault: the pager mapped my own page" : "FAILED: page not mine");
    pager_exit(0);
#elif HOSTILE_MODE == MODE_FORGE_CAP
    (void)instance;
    say("forging a capability fault");
    /* IP, CPtr, not in the receive phase, lookup failure type 1 (invalid root). */
    struct pager_message message = {{0x401000UL, 0x1000, 0, 1}};
    pager_call(LABEL_CAP_FAULT, 4, &message);
    failed("the pager answered a forged capability fault");
#elif HOSTILE_MODE == MODE_FORGE_LABEL
    (void)instance;
    struct pager_message message = {{0, 0, 0, 0}};
    pager_call(0x100000UL | PAGER_LABEL_EXIT, 1, &message);
    if (message.mr[0] != PAGER_LABEL_REFUSED)
        failed("a label above 20 bits was sent");
    say("a label above 20 bits is refused");
    pager_exit(0);
#endif
}
