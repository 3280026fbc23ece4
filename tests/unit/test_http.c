/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The health-check HTTP response parser: status lines, header fields, the
 * three body framings, interim responses, responses cut short and garbage.
 *
 * Every fixture goes through expect_resp(), which feeds it whole, one byte at
 * a time and split at every position into two pieces, and requires the same
 * verdict each way: the parser must not depend on how TCP cut the stream.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

enum feed_mode { WHOLE, BYTEWISE, SPLIT };

struct outcome {
	enum ag_http_state st;
	int status;
	const char *error;
	size_t used; /* bytes consumed in total */
	uint64_t body_len;
	unsigned int n_interim;
	char reason[AG_HTTP_REASON_MAX];
};

/* Feed `len` bytes of `text` (split per mode; `at` for SPLIT), then EOF if asked. */
static struct outcome run(const char *text, size_t len, bool eof, bool head, enum feed_mode mode,
			  size_t at)
{
	struct ag_http_resp r;
	struct outcome o = {0};
	enum ag_http_state st = AG_HTTP_MORE;
	size_t off = 0, used;

	ag_http__init(&r, head);
	while (off < len && st == AG_HTTP_MORE) {
		size_t n = len - off;

		if (mode == BYTEWISE)
			n = 1;
		else if (mode == SPLIT && off < at)
			n = at - off;
		st = ag_http__feed(&r, text + off, n, &used);
		CU_ASSERT(used <= n);
		off += used;
		if (st == AG_HTTP_MORE)
			CU_ASSERT_EQUAL(used, n);
	}
	if (st == AG_HTTP_MORE && eof)
		st = ag_http__eof(&r);
	o.st = st;
	o.status = r.status;
	o.error = r.error;
	o.used = off;
	o.body_len = r.body_len;
	o.n_interim = r.n_interim;
	snprintf(o.reason, sizeof(o.reason), "%s", r.reason);
	return o;
}

/* Run text in every feeding mode; all must agree. Returns the whole-feed outcome. */
static struct outcome parse_len(const char *text, size_t len, bool eof, bool head)
{
	struct outcome whole = run(text, len, eof, head, WHOLE, 0), o;
	size_t at;

	o = run(text, len, eof, head, BYTEWISE, 0);
	CU_ASSERT_EQUAL(o.st, whole.st);
	CU_ASSERT_EQUAL(o.status, whole.status);
	CU_ASSERT_EQUAL(o.used, whole.used);
	CU_ASSERT_EQUAL(o.body_len, whole.body_len);
	CU_ASSERT(o.error == whole.error);
	/* Every split for short fixtures; large ones are split at a sample of points. */
	for (at = 1; at<len; at += len> 600 ? len / 97 : 1) {
		o = run(text, len, eof, head, SPLIT, at);
		CU_ASSERT_EQUAL(o.st, whole.st);
		CU_ASSERT_EQUAL(o.status, whole.status);
		CU_ASSERT_EQUAL(o.used, whole.used);
		CU_ASSERT_EQUAL(o.body_len, whole.body_len);
		CU_ASSERT(o.error == whole.error);
	}
	return whole;
}

static struct outcome parse(const char *text, bool eof)
{
	return parse_len(text, strlen(text), eof, false);
}

/* A complete response: DONE with this status whether or not EOF follows. */
static void expect_done(const char *text, int status, const char *reason, uint64_t body_len)
{
	struct outcome o = parse(text, false);

	CU_ASSERT_EQUAL(o.st, AG_HTTP_DONE);
	CU_ASSERT_PTR_NULL(o.error);
	CU_ASSERT_EQUAL(o.status, status);
	CU_ASSERT_STRING_EQUAL(o.reason, reason);
	CU_ASSERT_EQUAL(o.body_len, body_len);
	CU_ASSERT_EQUAL(o.used, strlen(text));
	if (o.st != AG_HTTP_DONE)
		fprintf(stderr, "\n  [%s] -> st %d error %s\n", text, o.st,
			o.error ? o.error : "-");
}

static void expect_error_len(const char *text, size_t len, bool eof, const char *error)
{
	struct outcome o = parse_len(text, len, eof, false);

	CU_ASSERT_EQUAL(o.st, AG_HTTP_ERROR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o.error);
	CU_ASSERT_STRING_EQUAL(o.error, error);
	if (o.st != AG_HTTP_ERROR || strcmp(o.error, error))
		fprintf(stderr, "\n  [%.60s] -> st %d error %s, want %s\n", text, o.st,
			o.error ? o.error : "-", error);
}

static void expect_error(const char *text, bool eof, const char *error)
{
	expect_error_len(text, strlen(text), eof, error);
}

/* ------------------------------------------------------------------------ */

static void test_status_200(void)
{
	expect_done("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "OK", 5);
}

static void test_status_204(void)
{
	/* No Content-Length, no close: 204 has no body by definition. */
	expect_done("HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n", 204, "No Content", 0);
}

static void test_status_301(void)
{
	expect_done("HTTP/1.1 301 Moved Permanently\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n",
		    301, "Moved Permanently", 0);
}

static void test_status_503(void)
{
	expect_done("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n"
		    "Retry-After: 1\r\n\r\nbusy",
		    503, "Service Unavailable", 4);
}

static void test_status_without_reason(void)
{
	expect_done("HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", 503, "", 0);
	expect_done("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", 503, "", 0);
	expect_done("HTTP/1.0 200 \r\nContent-Length: 0\r\n\r\n", 200, "", 0);
}

static void test_reason_text(void)
{
	char text[256];
	struct outcome o;

	/* obs-text and HTAB are allowed in a reason; a long one is kept cut, not refused. */
	expect_done("HTTP/1.1 200 \tOk \xc3\xa9t\xc3\xa9\r\nContent-Length: 0\r\n\r\n", 200,
		    "\tOk \xc3\xa9t\xc3\xa9", 0);
	snprintf(text, sizeof(text), "HTTP/1.1 200 %0100d\r\nContent-Length: 0\r\n\r\n", 7);
	o = parse(text, false);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_DONE);
	CU_ASSERT_EQUAL(strlen(o.reason), AG_HTTP_REASON_MAX - 1);
	/* A control character in the reason is not. */
	expect_error("HTTP/1.1 200 O\x01K\r\n\r\n", false, "malformed status line");
}

static void test_bytewise_progress(void)
{
	static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct ag_http_resp r;
	size_t i, used;

	/* Every byte but the last asks for more; the last completes the response. */
	ag_http__init(&r, false);
	for (i = 0; i < sizeof(text) - 2; i++)
		CU_ASSERT_EQUAL(ag_http__feed(&r, text + i, 1, &used), AG_HTTP_MORE);
	CU_ASSERT_EQUAL(ag_http__feed(&r, text + i, 1, &used), AG_HTTP_DONE);
	CU_ASSERT_EQUAL(used, 1);
	CU_ASSERT_EQUAL(r.status, 200);
	/* After completion nothing more is taken. */
	CU_ASSERT_EQUAL(ag_http__feed(&r, "xyz", 3, &used), AG_HTTP_DONE);
	CU_ASSERT_EQUAL(used, 0);
	CU_ASSERT_EQUAL(ag_http__eof(&r), AG_HTTP_DONE);
}

static void test_content_length_bodies(void)
{
	static const char text[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA";
	struct outcome o;
	char big[9000];
	int n;

	/* Bytes after a complete response are not part of it. */
	o = parse(text, false);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_DONE);
	CU_ASSERT_EQUAL(o.used, strlen(text) - 5);
	CU_ASSERT_EQUAL(o.body_len, 3);
	/* Zero length, a larger body, field names in any case. */
	expect_done("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 200, "OK", 0);
	n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nCONTENT-LENGTH:8000\r\n\r\n");
	memset(big + n, 'b', 8000);
	big[n + 8000] = '\0';
	expect_done(big, 200, "OK", 8000);
	/* Same value repeated, as a list or twice: one message, accepted. */
	expect_done("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", 200, "OK", 2);
	expect_done("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2 \r\n\r\nok", 200,
		    "OK", 2);
}

static void test_content_length_bad(void)
{
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false,
		     "invalid Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", false,
		     "invalid Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", false,
		     "invalid Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", false,
		     "invalid Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", false,
		     "invalid Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false, "invalid Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", false,
		     "invalid Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 2,\r\n\r\nok", false,
		     "invalid Content-Length");
}

static void test_content_length_max(void)
{
	struct outcome o;

	/* The largest value parses; the body then is simply not complete. */
	o = parse("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nab", false);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_MORE);
	CU_ASSERT_EQUAL(o.body_len, 2);
}

static void test_content_length_conflict(void)
{
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
		     false, "conflicting Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", false,
		     "conflicting Content-Length");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		     false, "both Transfer-Encoding and Content-Length");
}

static void test_chunked_several(void)
{
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "5\r\nhello\r\n1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
		    200, "OK", 22);
	/* Upper-case hex, leading zeros, coding name in any case. */
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
		    "00A\r\n0123456789\r\n000\r\n\r\n",
		    200, "OK", 10);
	/* chunked after another coding is still chunked framing. */
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
		    "2\r\nok\r\n0\r\n\r\n",
		    200, "OK", 2);
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
		    "\r\n2\r\nok\r\n0\r\n\r\n",
		    200, "OK", 2);
}

static void test_chunked_extensions(void)
{
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "5;name=value\r\nhello\r\n3 ; a=\"q;x\" ;b\r\nabc\r\n0;last\r\n\r\n",
		    200, "OK", 8);
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n",
		     false, "bad chunk extension");
}

static void test_chunked_trailers(void)
{
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "4\r\nbody\r\n0\r\nChecksum: abc\r\nX-Done: yes\r\n\r\n",
		    200, "OK", 4);
	/* A Content-Length in the trailers does not reframe anything. */
	expect_done("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "0\r\nContent-Length: 99\r\n\r\n",
		    200, "OK", 0);
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "0\r\nBad Trailer: x\r\n\r\n",
		     false, "invalid header field name");
}

static void test_chunked_split(void)
{
	static const char text[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				   "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
	static const size_t cuts[] = {50, 52, 53, 55, 57, 60, 64, 66};
	struct ag_http_resp r;
	size_t prev = 0, used, i;

	/* Cuts inside sizes, data and CRLFs: MORE until the final CRLF arrives. */
	ag_http__init(&r, false);
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		CU_ASSERT_EQUAL(ag_http__feed(&r, text + prev, cuts[i] - prev, &used),
				AG_HTTP_MORE);
		CU_ASSERT_EQUAL(used, cuts[i] - prev);
		prev = cuts[i];
	}
	CU_ASSERT_EQUAL(ag_http__feed(&r, text + prev, strlen(text) - prev, &used), AG_HTTP_DONE);
	CU_ASSERT_EQUAL(r.body_len, 7);
}

static void test_chunked_bad(void)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	char text[256];

	snprintf(text, sizeof(text), "%szz\r\n", head);
	expect_error(text, false, "bad chunk size");
	snprintf(text, sizeof(text), "%s\r\n", head);
	expect_error(text, false, "bad chunk size");
	snprintf(text, sizeof(text), "%s-1\r\n", head);
	expect_error(text, false, "bad chunk size");
	snprintf(text, sizeof(text), "%s5 x\r\n", head);
	expect_error(text, false, "bad chunk size");
	/* 2^64: does not fit, and must not wrap around to a small size. */
	snprintf(text, sizeof(text), "%s10000000000000000\r\n", head);
	expect_error(text, false, "bad chunk size");
	snprintf(text, sizeof(text), "%s3\r\nabcd\r\n0\r\n\r\n", head);
	expect_error(text, false, "missing CRLF after chunk data");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false,
		     "chunked is not the final transfer coding");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n",
		     false, "chunked is not the final transfer coding");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n", false,
		     "invalid Transfer-Encoding");
}

static void test_close_delimited(void)
{
	static const char text[] = "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end";
	struct outcome o;

	/* No framing field: the body runs to the close, which completes it. */
	o = parse(text, false);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_MORE);
	o = parse(text, true);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_DONE);
	CU_ASSERT_EQUAL(o.status, 200);
	CU_ASSERT_EQUAL(o.body_len, 13);
	/* A final coding other than chunked is delimited by the close too. */
	o = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz", true);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_DONE);
	CU_ASSERT_EQUAL(o.body_len, 2);
	/* And an empty close-delimited body is a body. */
	o = parse("HTTP/1.1 503 Busy\r\n\r\n", true);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_DONE);
	CU_ASSERT_EQUAL(o.status, 503);
}

static void test_truncated(void)
{
	/* EOF before Content-Length bytes, before the last chunk, inside a chunk. */
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true, "truncated body");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true,
		     "truncated body");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true,
		     "truncated body");
	expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", true,
		     "truncated body");
	expect_error("HTTP/1.1 200 OK\r\nContent-Len", true, "truncated header section");
	expect_error("HTTP/1.1 200 OK\r\n", true, "truncated header section");
	expect_error("HTTP/1.1 20", true, "truncated status line");
	expect_error("HTTP/1.1 200 OK", true, "truncated status line");
	expect_error("", true, "empty reply");
}

static void test_interim(void)
{
	struct outcome o;

	o = parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
		  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		  false);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_DONE);
	CU_ASSERT_EQUAL(o.status, 200);
	CU_ASSERT_EQUAL(o.n_interim, 2);
	CU_ASSERT_EQUAL(o.body_len, 2);
	/* A Content-Length on an interim response frames nothing. */
	expect_done("HTTP/1.1 100 Continue\r\nContent-Length: 9\r\n\r\n"
		    "HTTP/1.1 204 No Content\r\n\r\n",
		    204, "No Content", 0);
	expect_error("HTTP/1.1 100 Continue\r\n\r\n", true, "truncated status line");
	expect_error("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", false,
		     "unexpected 101 Switching Protocols");
}

static void test_interim_loop(void)
{
	char text[64 * 26 + 1] = "";
	int i;

	for (i = 0; i <= AG_HTTP_INTERIM_MAX; i++)
		strcat(text, "HTTP/1.1 100 Continue\r\n\r\n");
	expect_error(text, false, "too many interim responses");
}

static void test_no_body_responses(void)
{
	struct outcome o;
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";

	/* A response to HEAD announces the length it would have, and sends nothing. */
	o = parse_len(head, strlen(head), false, true);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_DONE);
	CU_ASSERT_EQUAL(o.body_len, 0);
	o = parse_len(head, strlen(head), false, false);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_MORE);
	expect_done("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", 304, "Not Modified",
		    0);
	expect_done("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", 204,
		    "No Content", 0);
}

static void test_garbage_ssh(void)
{
	struct outcome o;

	/* Refused at the first byte, not after waiting for a line that may never come. */
	o = parse("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", false);
	CU_ASSERT_EQUAL(o.st, AG_HTTP_ERROR);
	CU_ASSERT_STRING_EQUAL(o.error, "malformed status line");
	CU_ASSERT_EQUAL(o.used, 0);
	expect_error("220 mail.example ESMTP\r\n", false, "malformed status line");
}

static void test_garbage_binary(void)
{
	static const char bin[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
	static const char nul[] = "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n";

	expect_error_len(bin, sizeof(bin) - 1, false, "malformed status line");
	expect_error_len(nul, sizeof(nul) - 1, false, "invalid header field value");
	expect_error_len("HTTP/1.1\x00 200", 13, false, "malformed status line");
}

static void test_garbage_status_code(void)
{
	expect_error("HTTP/1.1 2000 OK\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/1.1 20 OK\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/1.1 2x0 OK\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/1.1  200 OK\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/1.1 099 Low\r\n\r\n", false, "status code out of range");
	expect_error("HTTP/1.1 600 High\r\n\r\n", false, "status code out of range");
	expect_error("HTTP/1.1 200OK\r\n\r\n", false, "malformed status line");
}

static void test_garbage_version(void)
{
	expect_error("http/1.1 200 OK\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/2 200\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/2.0 200 OK\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/1.x 200 OK\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/1.1\t200 OK\r\n\r\n", false, "malformed status line");
	expect_error(" HTTP/1.1 200 OK\r\n\r\n", false, "malformed status line");
	expect_error("\r\nHTTP/1.1 200 OK\r\n\r\n", false, "malformed status line");
}

static void test_missing_crlf(void)
{
	/* Bare LF line ends, a bare CR, a line that never ends before the close. */
	expect_error("HTTP/1.1 200 OK\nContent-Length: 0\n\n", false, "malformed status line");
	expect_error("HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", false, "malformed status line");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 0\n\n", false,
		     "invalid header field value");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", false,
		     "invalid header field name");
	expect_error("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\rX", false,
		     "invalid header field name");
}

static void test_header_fields(void)
{
	expect_done("HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:   a  b  \r\n"
		    "X-Weird!#$%&'*+-.^_`|~: v\r\nContent-Length: 0\r\n\r\n",
		    200, "OK", 0);
	expect_error("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", false,
		     "invalid header field name");
	expect_error("HTTP/1.1 200 OK\r\nX(y): 0\r\n\r\n", false, "invalid header field name");
	expect_error("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", false, "invalid header field name");
	expect_error("HTTP/1.1 200 OK\r\nX-Long: a\r\n  continued\r\n\r\n", false,
		     "obsolete line folding");
	expect_error("HTTP/1.1 200 OK\r\n\tX: a\r\n\r\n", false, "obsolete line folding");
	expect_error("HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", false, "invalid header field value");
}

static void test_header_too_large(void)
{
	static const char status[] = "HTTP/1.1 200 OK\r\n";
	static const char tail[] = "Content-Length: 0\r\n\r\n";
	size_t fill = AG_HTTP_HEAD_MAX - (sizeof(status) - 1) - (sizeof(tail) - 1);
	char *text = malloc(AG_HTTP_HEAD_MAX + 64);
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	/* Exactly the limit: one field "X: aaaa...\r\n" filling what is left. */
	n = sprintf(text, "%sX: ", status);
	memset(text + n, 'a', fill - 5);
	n += fill - 5;
	n += sprintf(text + n, "\r\n%s", tail);
	CU_ASSERT_EQUAL(n, AG_HTTP_HEAD_MAX);
	expect_done(text, 200, "OK", 0);
	/* One byte more is refused, whether or not the rest ever arrives. */
	n = sprintf(text, "%sX: a", status);
	memset(text + n, 'a', fill - 5);
	n += fill - 5;
	sprintf(text + n, "\r\n%s", tail);
	expect_error(text, false, "header section too large");
	/* A never-ending header line is refused at the limit, before any CRLF. */
	memset(text, 'a', AG_HTTP_HEAD_MAX + 10);
	memcpy(text, "HTTP/1.1 200 OK\r\nX: ", 20);
	text[AG_HTTP_HEAD_MAX + 10] = '\0';
	expect_error(text, false, "header section too large");
	free(text);
}

static void test_trailer_too_large(void)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
	char *text = malloc(sizeof(head) + AG_HTTP_HEAD_MAX + 64);
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	n = sprintf(text, "%sT: ", head);
	memset(text + n, 't', AG_HTTP_HEAD_MAX);
	n += AG_HTTP_HEAD_MAX;
	sprintf(text + n, "\r\n\r\n");
	expect_error(text, false, "trailer section too large");
	free(text);
}

static void test_sticky_error(void)
{
	struct ag_http_resp r;
	size_t used = 99;

	ag_http__init(&r, false);
	CU_ASSERT_EQUAL(ag_http__feed(&r, "HTTP/1.1 200 OK\r\nA B\r\n", 22, &used), AG_HTTP_ERROR);
	CU_ASSERT_EQUAL(used, 18); /* the space in "A B" */
	CU_ASSERT_EQUAL(ag_http__feed(&r, "\r\n", 2, &used), AG_HTTP_ERROR);
	CU_ASSERT_EQUAL(used, 0);
	CU_ASSERT_EQUAL(ag_http__eof(&r), AG_HTTP_ERROR);
	CU_ASSERT_STRING_EQUAL(r.error, "invalid header field name");
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"status 200", test_status_200},
	    {"status 204", test_status_204},
	    {"status 301", test_status_301},
	    {"status 503", test_status_503},
	    {"status without reason", test_status_without_reason},
	    {"reason phrase text", test_reason_text},
	    {"byte-at-a-time progress", test_bytewise_progress},
	    {"Content-Length bodies", test_content_length_bodies},
	    {"Content-Length: bad values", test_content_length_bad},
	    {"Content-Length: largest value", test_content_length_max},
	    {"Content-Length: conflicts", test_content_length_conflict},
	    {"chunked: several chunks", test_chunked_several},
	    {"chunked: extensions", test_chunked_extensions},
	    {"chunked: trailers", test_chunked_trailers},
	    {"chunked: split across feeds", test_chunked_split},
	    {"chunked: bad framing", test_chunked_bad},
	    {"close-delimited body", test_close_delimited},
	    {"early close: truncated", test_truncated},
	    {"1xx interim responses", test_interim},
	    {"1xx without end", test_interim_loop},
	    {"HEAD, 204, 304: no body", test_no_body_responses},
	    {"garbage: SSH banner", test_garbage_ssh},
	    {"garbage: binary", test_garbage_binary},
	    {"garbage: status code", test_garbage_status_code},
	    {"garbage: version", test_garbage_version},
	    {"garbage: missing CRLF", test_missing_crlf},
	    {"header fields", test_header_fields},
	    {"header section too large", test_header_too_large},
	    {"trailer section too large", test_trailer_too_large},
	    {"errors are final", test_sticky_error},
	};
	CU_pSuite suite;
	unsigned int i, failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return CU_get_error();
	suite = CU_add_suite("http", NULL, NULL);
	if (!suite)
		goto cleanup;
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			goto cleanup;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
cleanup:
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_error() != CUE_SUCCESS)
		failed++;
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
