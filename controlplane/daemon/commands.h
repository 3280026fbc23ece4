/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygated's operator commands (commands.c, docs/control.md), on top of the
 * daemon (daemon.h): the command table served on the control socket, and the
 * changes behind it to d->ovr, with --dry-run and --confirm-within.
 */
#ifndef AG_COMMANDS_H
#define AG_COMMANDS_H

struct ag_daemon;

/*
 * Load edge.state_file into d->ovr and apply it to the view (before the
 * first publish; needs the loop: a pending --confirm-within re-arms). 0 or
 * -errno.
 */
int ag_cmds__init(struct ag_daemon *d);
/* Serve the control socket (edge.control_socket) from d->loop. 0 or -errno. */
int ag_cmds__start(struct ag_daemon *d);
/* After the loop has returned. */
void ag_cmds__free(struct ag_daemon *d);

#endif /* AG_COMMANDS_H */
