/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every kind of fast path anygated can drive, by edge.fastpath: the one place
 * that knows them all. Their common interface is fastpath.h; each kind
 * includes only that, so no kind depends on this list.
 */
#ifndef AG_FASTPATH_KINDS_H
#define AG_FASTPATH_KINDS_H

#include "config.h"
#include "fastpath.h"

/* The operations of a kind; NULL for an unknown one. */
const struct ag_fastpath_ops *ag_fastpath__ops(enum ag_fastpath_kind kind);

#endif /* AG_FASTPATH_KINDS_H */
