/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: the control socket's request splitter (ag_ctl__split,
 * controlplane/ctl/ctl.c). The input is one request line. ag_ctl__split must
 * agree with the reference below, written from ctl.h's description of the
 * syntax (words, refusals and which refusal comes first), and
 * ag_ctl__utf8_valid with a validator written from RFC 3629's table of
 * well-formed byte sequences. Every line it accepts must survive ag_ctl__join
 * and a second split unchanged (what anygatectl sends is what anygated reads).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fuzz.h"

/* RFC 3629 section 4: the length of the well-formed sequence at s, 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	/* first byte range, second byte range; later bytes are 80-BF */
	static const struct {
		unsigned char lo, hi, lo2, hi2, len;
	} forms[] = {
	    {0x00, 0x7f, 0, 0, 1},	 {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
	    {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
	    {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
	};
	size_t f, i;

	for (f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		if (s[0] < forms[f].lo || s[0] > forms[f].hi)
			continue;
		if (forms[f].len > n)
			return 0;
		if (forms[f].len > 1 && (s[1] < forms[f].lo2 || s[1] > forms[f].hi2))
			return 0;
		for (i = 2; i < forms[f].len; i++)
			if (s[i] < 0x80 || s[i] > 0xbf)
				return 0;
		return forms[f].len;
	}
	return 0;
}

static bool ref_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = utf8_seq(s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

struct ref_words {
	int argc;
	size_t len[AG_CTL_MAX_WORDS];
	char *word[AG_CTL_MAX_WORDS];
};

static void ref_free(struct ref_words *w)
{
	int i;

	for (i = 0; i < w->argc; i++)
		free(w->word[i]);
	w->argc = 0;
}

/*
 * ctl.h: words separated by spaces or tabs; a double quoted segment may hold
 * spaces, tabs, \" and \\ (a backslash is literal outside quotes); adjacent
 * segments join; "" is an empty word. Refused, in this order: over
 * AG_CTL_LINE_MAX bytes, a NUL, invalid UTF-8, then from left to right a
 * control character (tab excepted), a 65th word, an unterminated quote.
 */
static const char *ref_split(struct ref_words *w, const unsigned char *s, size_t n)
{
	size_t i = 0;

	w->argc = 0;
	if (n > AG_CTL_LINE_MAX)
		return "request longer than 4096 bytes";
	if (memchr(s, 0, n))
		return "request contains a NUL byte";
	if (!ref_utf8(s, n))
		return "request is not valid UTF-8";
	for (;;) {
		bool quoted = false;
		char *word;
		size_t o = 0;

		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i == n)
			return NULL;
		if (w->argc == AG_CTL_MAX_WORDS)
			return "request has more than 64 words";
		word = malloc(n - i + 1);
		CHECK(word);
		w->word[w->argc++] = word;
		for (; i < n && (quoted || (s[i] != ' ' && s[i] != '\t')); i++) {
			if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
				return "request contains a control character";
			if (s[i] == '"')
				quoted = !quoted;
			else if (quoted && s[i] == '\\' && i + 1 < n &&
				 (s[i + 1] == '"' || s[i + 1] == '\\'))
				word[o++] = (char)s[++i];
			else
				word[o++] = (char)s[i];
		}
		if (quoted)
			return "request has an unterminated quote";
		word[o] = '\0';
		w->len[w->argc - 1] = o;
	}
}

/* join(argv), split again: the same words, and joining those gives the same line. */
static void check_round_trip(const struct ag_ctl_words *w)
{
	struct ag_ctl_words *w2 = malloc(sizeof(*w2));
	const char *problem = NULL;
	char *line, *line2;
	int i;

	CHECK(w2);
	line = ag_ctl__join(w->argc, w->argv);
	CHECK(line);
	if (strlen(line) <= AG_CTL_LINE_MAX) {
		CHECK(ag_ctl__split(w2, line, strlen(line), &problem) == 0);
		CHECK(w2->argc == w->argc);
		for (i = 0; i < w->argc; i++)
			CHECK(!strcmp(w2->argv[i], w->argv[i]));
		line2 = ag_ctl__join(w2->argc, w2->argv);
		CHECK(line2 && !strcmp(line, line2));
		free(line2);
	}
	free(line);
	free(w2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ag_ctl_words *w = malloc(sizeof(*w));
	const char *problem = NULL, *want;
	struct ref_words ref;
	char *line;
	int rc, i;

	CHECK(w);
	/* An exact-size copy: ASan sees a read past the line's end. */
	line = malloc(size ? size : 1);
	CHECK(line);
	memcpy(line, data, size);

	CHECK(ag_ctl__utf8_valid(line, size) == ref_utf8(data, size));
	rc = ag_ctl__split(w, line, size, &problem);
	want = ref_split(&ref, data, size);
	if (want) {
		CHECK(rc == -EINVAL && problem && !strcmp(problem, want));
	} else {
		CHECK(rc == 0 && w->argc == ref.argc && !w->argv[w->argc]);
		for (i = 0; i < w->argc; i++) {
			CHECK(strlen(w->argv[i]) == ref.len[i]);
			CHECK(!memcmp(w->argv[i], ref.word[i], ref.len[i] + 1));
		}
		check_round_trip(w);
	}
	ref_free(&ref);
	free(line);
	free(w);
	return 0;
}
