/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * HTTP/1.1 response framing for health checks, one byte at a time through the
 * head (the head is small and may arrive split anywhere) and in bulk through
 * bodies. Nothing is buffered beyond the two header values that decide the
 * framing, so a parser costs ~250 bytes whatever the server sends.
 */
#include "http.h"

#include <string.h>
#include <strings.h>

enum {
	S_VERSION,    /* "HTTP/1.x ": idx = position */
	S_CODE,	      /* idx = digits seen */
	S_AFTER_CODE, /* SP before the reason, or CR */
	S_REASON,
	S_STATUS_LF,
	S_FIELD_START, /* a field name, or CR ending the section */
	S_FIELD_NAME,
	S_FIELD_OWS, /* whitespace before the value */
	S_FIELD_VALUE,
	S_FIELD_LF,
	S_SECTION_LF, /* LF of the empty line ending the head or trailers */
	S_BODY_LENGTH,
	S_BODY_CLOSE,
	S_CHUNK_SIZE, /* idx = hex digits seen */
	S_CHUNK_BWS,  /* whitespace after the size: only ";" or CR may follow */
	S_CHUNK_EXT,
	S_CHUNK_SIZE_LF,
	S_CHUNK_DATA,
	S_CHUNK_DATA_CR,
	S_CHUNK_DATA_LF,
	S_DONE,
	S_ERROR,
};

enum { H_OTHER, H_CONTENT_LENGTH, H_TRANSFER_ENCODING };

/* Maximum hex digits of a chunk size (leading zeros included): the value must fit 60 bits. */
#define CHUNK_SIZE_DIGITS_MAX 32

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* field-vchar, SP or HTAB: what a field value, a reason phrase or a chunk extension may hold. */
static bool is_text(unsigned char c)
{
	return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void reset_message(struct ag_http_resp *r)
{
	r->status = 0;
	r->reason[0] = '\0';
	r->reason_len = 0;
	r->has_cl = false;
	r->te_seen = false;
	r->te_chunked = false;
	r->in_trailer = false;
	r->head_len = 0;
	r->idx = 0;
	r->cl = 0;
	r->remaining = 0;
	r->st = S_VERSION;
}

void ag_http__init(struct ag_http_resp *r, bool head_request)
{
	memset(r, 0, sizeof(*r));
	r->head_request = head_request;
	reset_message(r);
}

static enum ag_http_state fail(struct ag_http_resp *r, const char *msg)
{
	r->st = S_ERROR;
	r->error = msg;
	return AG_HTTP_ERROR;
}

/* Trim OWS around [*b, *e). */
static void trim(const char **b, const char **e)
{
	while (*b < *e && is_ows(**b))
		(*b)++;
	while (*e > *b && is_ows((*e)[-1]))
		(*e)--;
}

/*
 * Content-Length = 1*DIGIT. A list of identical values ("5, 5", what some
 * proxies produce when merging) and repeated identical fields are accepted;
 * any disagreement is refused, as RFC 9112 section 6.3 asks, since the two
 * readings frame different messages.
 */
static enum ag_http_state content_length(struct ag_http_resp *r)
{
	const char *p = r->value, *end = r->value + r->vlen;

	if (r->vlen >= sizeof(r->value))
		return fail(r, "invalid Content-Length");
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *b = p, *e = comma ? comma : end;
		uint64_t v = 0;

		trim(&b, &e);
		if (b == e)
			return fail(r, "invalid Content-Length");
		for (; b < e; b++) {
			if (*b < '0' || *b > '9')
				return fail(r, "invalid Content-Length");
			if (v > (UINT64_MAX - (uint64_t)(*b - '0')) / 10)
				return fail(r, "invalid Content-Length");
			v = v * 10 + (uint64_t)(*b - '0');
		}
		if (r->has_cl && v != r->cl)
			return fail(r, "conflicting Content-Length");
		r->has_cl = true;
		r->cl = v;
		if (!comma)
			return AG_HTTP_MORE;
		p = comma + 1;
	}
}

/*
 * Transfer-Encoding = #transfer-coding, possibly over several fields.
 * chunked must be the final coding and appear once; when the final coding is
 * something else a response is delimited by the close (RFC 9112 6.3).
 */
static enum ag_http_state transfer_encoding(struct ag_http_resp *r)
{
	const char *p = r->value, *end = r->value + r->vlen;
	bool any = false;

	if (r->vlen >= sizeof(r->value))
		return fail(r, "unsupported Transfer-Encoding");
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *b = p, *e = comma ? comma : end, *n;

		trim(&b, &e);
		if (b < e) { /* empty list elements are allowed */
			for (n = b; n < e && is_tchar(*n); n++)
				;
			if (n == b || (n < e && *n != ';' && !is_ows(*n)))
				return fail(r, "invalid Transfer-Encoding");
			if (r->te_chunked)
				return fail(r, "chunked is not the final transfer coding");
			r->te_chunked = (n - b == 7 && !strncasecmp(b, "chunked", 7));
			r->te_seen = true;
			any = true;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!any)
		return fail(r, "invalid Transfer-Encoding");
	return AG_HTTP_MORE;
}

static enum ag_http_state end_field(struct ag_http_resp *r)
{
	if (r->in_trailer)
		return AG_HTTP_MORE; /* trailer fields never change the framing */
	switch (r->hdr) {
	case H_CONTENT_LENGTH:
		return content_length(r);
	case H_TRANSFER_ENCODING:
		return transfer_encoding(r);
	}
	return AG_HTTP_MORE;
}

/* The empty line after the header fields: decide what follows. */
static enum ag_http_state end_head(struct ag_http_resp *r)
{
	if (r->in_trailer) {
		r->st = S_DONE;
		return AG_HTTP_DONE;
	}
	if (r->status < 200) {
		/* We never ask to switch protocols: a 101 is not an answer to a GET. */
		if (r->status == 101)
			return fail(r, "unexpected 101 Switching Protocols");
		/* Interim (100 Continue, 103 Early Hints): no body, the real one follows. */
		if (++r->n_interim > AG_HTTP_INTERIM_MAX)
			return fail(r, "too many interim responses");
		reset_message(r);
		return AG_HTTP_MORE;
	}
	if (r->te_seen && r->has_cl)
		return fail(r, "both Transfer-Encoding and Content-Length");
	if (r->head_request || r->status == 204 || r->status == 304) {
		r->st = S_DONE;
		return AG_HTTP_DONE;
	}
	if (r->te_seen) {
		r->idx = 0;
		r->remaining = 0;
		r->st = r->te_chunked ? S_CHUNK_SIZE : S_BODY_CLOSE;
	} else if (r->has_cl) {
		r->remaining = r->cl;
		r->st = S_BODY_LENGTH;
		if (!r->remaining) {
			r->st = S_DONE;
			return AG_HTTP_DONE;
		}
	} else {
		r->st = S_BODY_CLOSE;
	}
	return AG_HTTP_MORE;
}

static void classify_field(struct ag_http_resp *r)
{
	r->hdr = H_OTHER;
	if (r->idx >= sizeof(r->name))
		return;
	r->name[r->idx] = '\0';
	if (!strcmp(r->name, "content-length"))
		r->hdr = H_CONTENT_LENGTH;
	else if (!strcmp(r->name, "transfer-encoding"))
		r->hdr = H_TRANSFER_ENCODING;
}

/* c in lower case, for header field names (tchar only: no locale). */
static char lower(unsigned char c)
{
	return (char)(c | ((c >= 'A' && c <= 'Z') ? 0x20 : 0));
}

/* One byte of the status line: "HTTP/1.x SP 3DIGIT [SP reason] CRLF". */
static enum ag_http_state status_line_step(struct ag_http_resp *r, unsigned char c)
{
	static const char version[] = "HTTP/1.";

	switch (r->st) {
	case S_VERSION:
		if (r->idx < 7	  ? c != (unsigned char)version[r->idx]
		    : r->idx == 7 ? (c < '0' || c > '9')
				  : c != ' ')
			return fail(r, "malformed status line");
		if (++r->idx == 9) {
			r->idx = 0;
			r->st = S_CODE;
		}
		return AG_HTTP_MORE;
	case S_CODE:
		if (c < '0' || c > '9')
			return fail(r, "malformed status line");
		r->status = r->status * 10 + (c - '0');
		if (++r->idx == 3) {
			if (r->status < 100 || r->status > 599)
				return fail(r, "status code out of range");
			r->st = S_AFTER_CODE;
		}
		return AG_HTTP_MORE;
	case S_AFTER_CODE:
		/* The SP before an empty reason is often left out: accept both. */
		if (c == ' ')
			r->st = S_REASON;
		else if (c == '\r')
			r->st = S_STATUS_LF;
		else
			return fail(r, "malformed status line");
		return AG_HTTP_MORE;
	case S_REASON:
		if (c == '\r') {
			r->st = S_STATUS_LF;
		} else if (is_text(c)) {
			if (r->reason_len < sizeof(r->reason) - 1) {
				r->reason[r->reason_len++] = (char)c;
				r->reason[r->reason_len] = '\0';
			}
		} else {
			return fail(r, "malformed status line");
		}
		return AG_HTTP_MORE;
	case S_STATUS_LF:
		if (c != '\n')
			return fail(r, "malformed status line");
		r->st = S_FIELD_START;
		return AG_HTTP_MORE;
	}
	return fail(r, "internal parser state");
}

/* One byte of a field line, or of the empty line ending the head or the trailers. */
static enum ag_http_state field_line_step(struct ag_http_resp *r, unsigned char c)
{
	switch (r->st) {
	case S_FIELD_START:
		if (c == '\r') {
			r->st = S_SECTION_LF;
		} else if (is_ows(c)) {
			/* obs-fold, or whitespace before the first field: both refused. */
			return fail(r, "obsolete line folding");
		} else if (is_tchar(c)) {
			r->name[0] = lower(c);
			r->idx = 1;
			r->st = S_FIELD_NAME;
		} else {
			return fail(r, "invalid header field name");
		}
		return AG_HTTP_MORE;
	case S_FIELD_NAME:
		if (c == ':') {
			classify_field(r);
			r->vlen = 0;
			r->st = S_FIELD_OWS;
		} else if (is_tchar(c)) {
			if (r->idx < sizeof(r->name))
				r->name[r->idx] = lower(c);
			if (r->idx < UINT16_MAX)
				r->idx++;
		} else {
			/* Includes whitespace between the name and the colon (RFC 9112 5.1). */
			return fail(r, "invalid header field name");
		}
		return AG_HTTP_MORE;
	case S_FIELD_OWS:
		if (is_ows(c))
			return AG_HTTP_MORE;
		r->st = S_FIELD_VALUE;
		/* fall through */
	case S_FIELD_VALUE:
		if (c == '\r') {
			r->st = S_FIELD_LF;
		} else if (is_text(c)) {
			if (r->hdr != H_OTHER && r->vlen < sizeof(r->value))
				r->value[r->vlen++] = (char)c; /* vlen == sizeof: too long */
		} else {
			return fail(r, "invalid header field value");
		}
		return AG_HTTP_MORE;
	case S_FIELD_LF:
		if (c != '\n')
			return fail(r, "invalid header field value");
		r->st = S_FIELD_START;
		return end_field(r);
	case S_SECTION_LF:
		if (c != '\n')
			return fail(r, "invalid header field name");
		return end_head(r);
	}
	return fail(r, "internal parser state");
}

/* One byte of a chunk-size line (size, extensions, CRLF) or of the CRLF after chunk data. */
static enum ag_http_state chunk_line_step(struct ag_http_resp *r, unsigned char c)
{
	int v;

	switch (r->st) {
	case S_CHUNK_SIZE:
		v = hex_value(c);
		if (v >= 0) {
			if (r->remaining >> 60 || ++r->idx > CHUNK_SIZE_DIGITS_MAX)
				return fail(r, "bad chunk size");
			r->remaining = (r->remaining << 4) | (uint64_t)v;
			return AG_HTTP_MORE;
		}
		if (!r->idx)
			return fail(r, "bad chunk size");
		/* What may follow the size is what may follow whitespace after it. */
		/* fall through */
	case S_CHUNK_BWS:
		if (c == ';') {
			r->ext_len = 0;
			r->st = S_CHUNK_EXT;
		} else if (c == '\r') {
			r->st = S_CHUNK_SIZE_LF;
		} else if (is_ows(c)) {
			r->st = S_CHUNK_BWS;
		} else {
			return fail(r, "bad chunk size");
		}
		return AG_HTTP_MORE;
	case S_CHUNK_EXT:
		/* Extensions carry nothing a health check needs: check the characters, skip. */
		if (c == '\r')
			r->st = S_CHUNK_SIZE_LF;
		else if (!is_text(c))
			return fail(r, "bad chunk extension");
		else if (++r->ext_len > AG_HTTP_CHUNK_EXT_MAX)
			return fail(r, "chunk extension too long");
		return AG_HTTP_MORE;
	case S_CHUNK_SIZE_LF:
		if (c != '\n')
			return fail(r, "bad chunk size");
		if (r->remaining) {
			r->st = S_CHUNK_DATA;
		} else {
			/* Last chunk: the trailer section follows, framed like the head. */
			r->in_trailer = true;
			r->head_len = 0;
			r->st = S_FIELD_START;
		}
		return AG_HTTP_MORE;
	case S_CHUNK_DATA_CR:
		if (c != '\r')
			return fail(r, "missing CRLF after chunk data");
		r->st = S_CHUNK_DATA_LF;
		return AG_HTTP_MORE;
	case S_CHUNK_DATA_LF:
		if (c != '\n')
			return fail(r, "missing CRLF after chunk data");
		r->idx = 0;
		r->remaining = 0;
		r->st = S_CHUNK_SIZE;
		return AG_HTTP_MORE;
	}
	return fail(r, "internal parser state");
}

/*
 * One byte of a line: of the status line, of a field line or of a chunk-size line (the
 * states are declared in that order). Bodies and chunk data go through ag_http__feed()
 * in bulk, never here.
 */
static enum ag_http_state step(struct ag_http_resp *r, unsigned char c)
{
	if (r->st <= S_STATUS_LF)
		return status_line_step(r, c);
	if (r->st <= S_SECTION_LF)
		return field_line_step(r, c);
	return chunk_line_step(r, c);
}

static bool in_section(const struct ag_http_resp *r)
{
	return r->st >= S_VERSION && r->st <= S_SECTION_LF;
}

enum ag_http_state ag_http__feed(struct ag_http_resp *r, const void *buf, size_t len, size_t *used)
{
	const unsigned char *p = buf;
	enum ag_http_state ret = AG_HTTP_MORE;
	size_t i = 0;

	if (r->st == S_DONE || r->st == S_ERROR) {
		ret = r->st == S_DONE ? AG_HTTP_DONE : AG_HTTP_ERROR;
		goto out;
	}
	while (i < len) {
		size_t n = len - i;

		switch (r->st) {
		case S_BODY_CLOSE:
			r->body_len += n;
			i += n;
			continue;
		case S_BODY_LENGTH:
		case S_CHUNK_DATA:
			if (n > r->remaining)
				n = (size_t)r->remaining;
			r->remaining -= n;
			r->body_len += n;
			i += n;
			if (!r->remaining) {
				if (r->st == S_BODY_LENGTH) {
					r->st = S_DONE;
					ret = AG_HTTP_DONE;
					goto out;
				}
				r->st = S_CHUNK_DATA_CR;
			}
			continue;
		}
		if (in_section(r) && ++r->head_len > AG_HTTP_HEAD_MAX) {
			ret = fail(r, r->in_trailer ? "trailer section too large"
						    : "header section too large");
			goto out;
		}
		ret = step(r, p[i]);
		if (ret != AG_HTTP_MORE) {
			/* The deciding byte belongs to the message when it completes it. */
			if (ret == AG_HTTP_DONE)
				i++;
			goto out;
		}
		i++;
	}
out:
	if (used)
		*used = i;
	return ret;
}

enum ag_http_state ag_http__eof(struct ag_http_resp *r)
{
	switch (r->st) {
	case S_DONE:
		return AG_HTTP_DONE;
	case S_ERROR:
		return AG_HTTP_ERROR;
	case S_BODY_CLOSE:
		r->st = S_DONE;
		return AG_HTTP_DONE;
	case S_VERSION:
		if (!r->idx && !r->n_interim)
			return fail(r, "empty reply");
		/* fall through */
	case S_CODE:
	case S_AFTER_CODE:
	case S_REASON:
	case S_STATUS_LF:
		return fail(r, "truncated status line");
	}
	if (in_section(r) && !r->in_trailer)
		return fail(r, "truncated header section");
	return fail(r, "truncated body");
}
