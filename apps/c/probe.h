/* probe.h: asking the pager whether another client is still alive, for the exhaustion images.
 *
 * There is no call for it, so the share call answers: share one of my areas into <app>#<instance>
 * at its IPC buffer page (PAGER_IPC_BUFFER_ADDRESS, reserved in every client, docs/app-abi.md). The
 * pager looks the destination up first, so a client that is gone gives
 * PAGER_SHARE_NO_SUCH_DESTINATION; a live one gives PAGER_SHARE_NOT_PERMITTED (the manifest lets me
 * share nothing into it) or PAGER_SHARE_DOES_NOT_FIT (the page is a reserved area of the pager's),
 * refused before anything is shared. Either way nothing changes. */
#ifndef PROBE_H
#define PROBE_H

#include "pager_app.h"

/* An address in one of my areas (read-only data): the share call needs one. */
static const char probe_anchor[] = "probe";

/* 1 while <app>#<instance> is alive, 0 once it is gone. Any other answer is a broken promise of
 * the pager's: it is printed and the client exits with 4. */
static inline int probe_alive(const char *app, unsigned long instance)
{
    unsigned long status =
        pager_share((unsigned long)probe_anchor, app, instance, PAGER_IPC_BUFFER_ADDRESS);
    if (status == PAGER_SHARE_NO_SUCH_DESTINATION)
        return 0;
    if (status == PAGER_SHARE_NOT_PERMITTED || status == PAGER_SHARE_DOES_NOT_FIT)
        return 1;
    struct pager_line line = {0};
    pager_line_add(&line, "FAILED: probing ");
    pager_line_add(&line, app);
    pager_line_add(&line, " got share status ");
    pager_line_add_unsigned(&line, status);
    pager_line_print(&line);
    pager_exit(4);
}

/* Gives up the processor until <app>#<instance> is gone. */
static inline void probe_wait_until_gone(const char *app, unsigned long instance)
{
    while (probe_alive(app, instance))
        pager_yield();
}

#endif
