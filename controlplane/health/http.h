/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * An incremental HTTP/1.1 response parser for health checks (RFC 9112
 * framing). Pure: no I/O, no allocation. Bytes are fed as they arrive, split
 * anywhere; the parser answers "need more", "complete" (final status code and
 * reason phrase) or "error" (a static message). It walks the whole message,
 * body included, so a response cut short or framed wrongly is a failed check
 * rather than a success read off its first line.
 *
 * Framing: strict status line (HTTP/1.x SP 3DIGIT [SP reason] CRLF, code
 * 100-599), header fields (token ":" OWS value OWS CRLF; obs-fold refused;
 * head at most AG_HTTP_HEAD_MAX bytes), then the body by Transfer-Encoding:
 * chunked, by Content-Length, or until the connection closes. 1xx interim
 * responses are skipped; responses to HEAD and 204/304 have no body.
 */
#ifndef AG_HTTP_H
#define AG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Status line plus header fields (and separately: trailer section) of one response. */
#define AG_HTTP_HEAD_MAX      16384
/* Chunk extensions are ignored, but not without bound. */
#define AG_HTTP_CHUNK_EXT_MAX 1024
#define AG_HTTP_REASON_MAX    64
/* 1xx responses skipped before a final one: a server looping on them is broken. */
#define AG_HTTP_INTERIM_MAX   16

enum ag_http_state {
	AG_HTTP_MORE = 0,  /* feed more bytes (or signal EOF) */
	AG_HTTP_DONE = 1,  /* a complete final response: status, reason */
	AG_HTTP_ERROR = 2, /* error holds the problem; further input is refused */
};

struct ag_http_resp {
	/* Results */
	int status;			 /* final status code once known (0 before) */
	char reason[AG_HTTP_REASON_MAX]; /* reason phrase, NUL-terminated, may be cut */
	const char *error;		 /* static message when AG_HTTP_ERROR */
	unsigned int n_interim;		 /* 1xx responses skipped */
	uint64_t body_len;		 /* body bytes seen (chunk data only, when chunked) */

	/* Parser state: private */
	int st;
	bool head_request;
	bool in_trailer;
	bool has_cl;
	bool te_seen;
	bool te_chunked; /* the last transfer coding so far is chunked */
	uint8_t hdr;	 /* which header the current field is */
	uint16_t idx;	 /* position inside the current token */
	uint16_t vlen;	 /* bytes kept of the current field value */
	uint16_t reason_len;
	uint32_t head_len; /* bytes of the current head (or trailer) section */
	uint32_t ext_len;
	uint64_t cl;	    /* Content-Length */
	uint64_t remaining; /* body or chunk bytes still to come */
	char name[24];	    /* lowercased field name, enough for the ones we read */
	char value[128];    /* value of a field we interpret */
};

/* Start a response; head_request: it answers a HEAD (no body whatever the headers say). */
void ag_http__init(struct ag_http_resp *r, bool head_request);

/*
 * Feed len bytes. *used (may be NULL) receives how many were consumed: all of
 * them unless the response completed or failed inside the buffer (bytes after
 * a complete response are not part of it).
 */
enum ag_http_state ag_http__feed(struct ag_http_resp *r, const void *buf, size_t len, size_t *used);

/*
 * The peer closed the connection: completes a body delimited by the close,
 * anything else unfinished is an error ("truncated body", ...).
 */
enum ag_http_state ag_http__eof(struct ag_http_resp *r);

#endif /* AG_HTTP_H */
