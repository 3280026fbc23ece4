// SPDX-License-Identifier: BSD-3-Clause
/*
 * An endpoint group's health_check block: the rules its keys add to their
 * type (a timeout within the interval, HTTP strings that go verbatim into a
 * request line, UDP payloads that fit one datagram) and its derived defaults.
 * Which keys each protocol takes is declared in keys.c (`only`).
 */
#include <string.h>

#include "parse.h"

void ag_cfg__health_finish(struct ag_cfg_scope *sc)
{
	struct ag_cfg_health *hc = sc->base;

	if (!sc->grp) /* no health_check block: located at its group */
		hc->line = ag_cfg__line(sc->up->grp);
	/* half the interval leaves time to tell a slow answer from none, up to 1 s */
	if (!hc->timeout_ms)
		hc->timeout_ms = (hc->interval_ms < 2000 ? hc->interval_ms : 2000) / 2;
}

int ag_cfg__parse_timeout(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			  const char *key)
{
	struct ag_cfg_health *hc = sc->base;
	long long n;

	if (ag_cfg__int_at_most(sc, k, m, key, "interval_ms", hc->interval_ms, &n) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	hc->timeout_ms = n;
	return AG_CFG_VALUE;
}

int ag_cfg__parse_http_path(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	const char *v;

	if (ag_cfg__string(sc->ctx, m, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (v[0] != '/' || strlen(v) > (size_t)k->max || !ag_cfg__is_token(v)) {
		ag_cfg__err(sc->ctx, m, key,
			    "must start with '/' and be at most %lld printable characters without "
			    "spaces (got %s)",
			    k->max, ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	return ag_cfg__value(sc, k, m, key);
}

int ag_cfg__parse_http_host(struct ag_cfg_scope *sc, const struct ag_cfg_key *k,
			    config_setting_t *m, const char *key)
{
	const char *v;

	if (ag_cfg__string(sc->ctx, m, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (strlen(v) < (size_t)k->min || strlen(v) > (size_t)k->max || !ag_cfg__is_token(v)) {
		ag_cfg__err(sc->ctx, m, key,
			    "must be %lld-%lld printable characters without spaces (got %s)",
			    k->min, k->max, ag_cfg__quote(v).s);
		return AG_CFG_INVALID;
	}
	return ag_cfg__value(sc, k, m, key);
}

/* UDP request and expected reply: one datagram; a reply left out accepts any. */
int ag_cfg__parse_payload(struct ag_cfg_scope *sc, const struct ag_cfg_key *k, config_setting_t *m,
			  const char *key)
{
	const char *v;

	if (ag_cfg__string(sc->ctx, m, key, &v) != AG_CFG_VALUE)
		return AG_CFG_INVALID;
	if (strlen(v) < (size_t)k->min || strlen(v) > (size_t)k->max) {
		ag_cfg__err(sc->ctx, m, key, "must be %lld-%lld bytes%s (got %zu)", k->min, k->max,
			    k->flags & AG_CFG_F_REQUIRED ? "" : ", or left out to accept any reply",
			    strlen(v));
		return AG_CFG_INVALID;
	}
	return ag_cfg__value(sc, k, m, key);
}
