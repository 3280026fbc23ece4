/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the health checker's HTTP response parser
 * (controlplane/health/http.c). A response is parsed three ways: fed whole,
 * fed in the pieces the input chooses, and fed one byte at a time; the three
 * must end the same (state, status, reason, error, interim responses skipped,
 * body bytes, bytes consumed), as bytes arrive from a socket split anywhere.
 * Each way stops feeding at the first DONE or ERROR, as the prober does, and
 * signals the close afterwards when the input asks for it.
 *
 * Input: [0] flags (F_HEAD: the response answers a HEAD; F_EOF: the peer
 * closes after the last byte), [1] number of cuts k (0-15), then 2k bytes of
 * cut offsets (big-endian, taken modulo the response length + 1), then the
 * response.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "fuzz.h"

#define F_HEAD	 0x01
#define F_EOF	 0x02
#define MAX_CUTS 15

struct outcome {
	enum ag_http_state st;
	size_t used;
	struct ag_http_resp r;
};

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return (x > y) - (x < y);
}

/* Feed msg in the pieces between the sorted offsets cuts[0..k), then the close if eof. */
static void parse_pieces(struct outcome *o, const uint8_t *msg, size_t len, const size_t *cuts,
			 size_t k, bool head, bool eof)
{
	size_t start = 0, i;

	ag_http__init(&o->r, head);
	o->st = AG_HTTP_MORE;
	o->used = 0;
	for (i = 0; i <= k && o->st == AG_HTTP_MORE; i++) {
		size_t end = i < k ? cuts[i] : len, used = 0;

		o->st = ag_http__feed(&o->r, msg + start, end - start, &used);
		CHECK(used <= end - start);
		CHECK(o->st != AG_HTTP_MORE || used == end - start);
		o->used += used;
		start = end;
	}
	if (o->st == AG_HTTP_MORE && eof)
		o->st = ag_http__eof(&o->r);
}

/* What every outcome must hold on its own, whatever the bytes. */
static void check_outcome(const struct outcome *o, size_t len)
{
	size_t used = 1;

	CHECK(o->used <= len);
	CHECK(memchr(o->r.reason, '\0', sizeof(o->r.reason)));
	CHECK((o->st == AG_HTTP_ERROR) == (o->r.error != NULL));
	/* The one over the limit is counted too: it is what the error is about. */
	CHECK(o->r.n_interim <= AG_HTTP_INTERIM_MAX + (o->st == AG_HTTP_ERROR));
	if (o->st == AG_HTTP_DONE)
		CHECK(o->r.status >= 200 && o->r.status <= 599);
	/* A finished parser takes nothing more and keeps its answer. */
	if (o->st != AG_HTTP_MORE) {
		struct ag_http_resp copy = o->r;

		CHECK(ag_http__feed(&copy, "x", 1, &used) == o->st && used == 0);
	}
}

static void check_same(const struct outcome *a, const struct outcome *b)
{
	CHECK(a->st == b->st);
	CHECK(a->used == b->used);
	CHECK(a->r.status == b->r.status);
	CHECK(!strcmp(a->r.reason, b->r.reason));
	CHECK((a->r.error == NULL) == (b->r.error == NULL));
	CHECK(!a->r.error || !strcmp(a->r.error, b->r.error));
	CHECK(a->r.n_interim == b->r.n_interim);
	CHECK(a->r.body_len == b->r.body_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cuts[MAX_CUTS], k, i, len, *bytes = NULL;
	struct outcome whole, pieces, bytewise;
	const uint8_t *msg;
	bool head, eof;

	if (size < 2)
		return -1;
	head = data[0] & F_HEAD;
	eof = data[0] & F_EOF;
	k = data[1] % (MAX_CUTS + 1);
	if (size < 2 + 2 * k)
		return -1;
	msg = data + 2 + 2 * k;
	len = size - 2 - 2 * k;
	for (i = 0; i < k; i++)
		cuts[i] = (size_t)(data[2 + 2 * i] << 8 | data[3 + 2 * i]) % (len + 1);
	qsort(cuts, k, sizeof(cuts[0]), cmp_size);

	parse_pieces(&whole, msg, len, NULL, 0, head, eof);
	check_outcome(&whole, len);
	parse_pieces(&pieces, msg, len, cuts, k, head, eof);
	check_outcome(&pieces, len);
	check_same(&whole, &pieces);

	/* Every cut at once: one byte a call (empty pieces above are the other extreme). */
	if (len > 1) {
		bytes = malloc((len - 1) * sizeof(*bytes));
		CHECK(bytes);
		for (i = 0; i < len - 1; i++)
			bytes[i] = i + 1;
	}
	parse_pieces(&bytewise, msg, len, bytes, len > 1 ? len - 1 : 0, head, eof);
	check_same(&whole, &bytewise);
	free(bytes);
	return 0;
}
