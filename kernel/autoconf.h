/*
 * The project's seL4 5.0.0 kernel configuration: x86_64, pc99, for QEMU TCG; a release build, or a
 * debug build with printing (see the end).
 *
 * `cargo xtask kernel` installs this file as `include/plat/pc99/autoconf.h` in its copy of the kernel
 * source, replacing the verification config that ships there (printing off, x2APIC and PCID on). That
 * is the copy the compiler sees: `#include <autoconf.h>` searches include/plat/pc99 before the build
 * folder, so the Makefile's copy of it into the build folder decides nothing. Any change here changes
 * the build's cache key.
 * Left out on purpose: PCID, x2APIC, IOMMU and huge pages, which fail or need CPU flags under TCG.
 */
#define AUTOCONF_INCLUDED

/* The architecture and platform: 64-bit x86 on a PC. */
#define CONFIG_ARCH_X86 1
#define CONFIG_ARCH_X86_64 1
#define CONFIG_PLAT_PC99 1
#define CONFIG_WORD_SIZE 64

/* Lazy FPU switching; a thread's FPU state stays loaded for up to 64 restores without a switch. */
#define CONFIG_HAVE_FPU 1
#define CONFIG_FPU_MAX_RESTORES_SINCE_SWITCH 64

/*
 * 2^18 root CNode slots (8 MiB of kernel memory, made at boot). The pager keeps every pool frame's
 * cap and every cap copy it maps into a client here, so this bounds a client's resident pages: the
 * scale image's 100,000 pages take a frame slot and a copy slot each. The kernel also gives every
 * 4 KiB frame of the root task's image a slot at boot (the packed app images included) and refuses
 * to boot when they do not fit. The root CNode's guard is 64 - 18 = 46 bits.
 */
#define CONFIG_ROOT_CNODE_SIZE_BITS 18

/* Scheduling: a 2 ms timer tick, time slices of 5 ticks, one domain, 256 priorities. */
#define CONFIG_TIMER_TICK_MS 2
#define CONFIG_TIME_SLICE 5
#define CONFIG_NUM_DOMAINS 1
#define CONFIG_NUM_PRIORITIES 256

/* Bounds on work per kernel entry: objects per Untyped_Retype, units before a preemption point. */
#define CONFIG_RETYPE_FAN_OUT_LIMIT 256
#define CONFIG_MAX_NUM_WORK_UNITS_PER_PREEMPTION 100

/* Length of bootinfo's untyped list (`untypedList[167]`): the binding's bootinfo struct must match. */
#define CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS 167

/* The IPC fastpath for Call and ReplyRecv. */
#define CONFIG_FASTPATH 1

/* One CPU. */
#define CONFIG_MAX_NUM_NODES 1

/* Cache line size in bytes, used to align kernel data. */
#define CONFIG_CACHE_LN_SZ 64

/* 4 KiB kernel stack. */
#define CONFIG_KERNEL_STACK_BITS 12

/* Interrupts through one I/O APIC and the memory-mapped local xAPIC (not x2APIC: TCG lacks it). */
#define CONFIG_IRQ_IOAPIC 1
#define CONFIG_MAX_NUM_IOAPIC 1
#define CONFIG_XAPIC 1

/* Kernel entry by the `syscall` instruction (not `sysenter`): the binding's syscall stubs use it. */
#define CONFIG_SYSCALL 1

/* FPU state saved with `fxsave`: 512 bytes, no XSAVE features needed from the CPU. */
#define CONFIG_FXSAVE 1
#define CONFIG_XSAVE_SIZE 512

/* FS/GS base through MSRs, not the `wrfsbase` instructions, which need a CPU flag. */
#define CONFIG_FSGSBASE_MSR 1

/*
 * Two builds share this file (xtask/src/kernel.rs). The release kernel: no CONFIG_DEBUG_BUILD and
 * no CONFIG_PRINTING, so no debug syscall (DebugPutChar, DebugHalt, DebugSnapshot, ...) exists for
 * any thread and the kernel writes nothing to serial. The debug kernel, built with the Makefile's
 * DEBUG=1, which passes -DCONFIG_DEBUG_BUILD and -DCONFIG_USER_STACK_TRACE_LENGTH=1 on the command
 * line but misspells the CONFIG_PRINTING flag: printing is turned on here when the build is a debug
 * one (debug syscalls and the boot log on the console port the boot command line names).
 */
#ifdef CONFIG_DEBUG_BUILD
#define CONFIG_PRINTING 1
#endif

/* -O2, the Makefile's default, named here so the config says it. */
#define CONFIG_OPTIMISATION_O2 1

/* No benchmark tracepoints or kernel log buffer. */
#define CONFIG_NO_BENCHMARKS 1
