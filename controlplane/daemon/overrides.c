/* SPDX-License-Identifier: BSD-3-Clause */
#include "overrides.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "view.h"

static const char *const kind_names[AG_OVR__MAX] = {
    [AG_OVR_WEIGHT] = "weight",
    [AG_OVR_DRAIN] = "drain",
    [AG_OVR_DIAL] = "dial",
    [AG_OVR_DRILL] = "drill",
};

const char *ag_ovr_kind__name(enum ag_ovr_kind k)
{
	return (unsigned int)k < AG_OVR__MAX ? kind_names[k] : NULL;
}

bool ag_ovr_kind__endpoint(enum ag_ovr_kind k)
{
	return k == AG_OVR_WEIGHT || k == AG_OVR_DRAIN;
}

static bool kind_is_flag(enum ag_ovr_kind k)
{
	return k == AG_OVR_DRAIN || k == AG_OVR_DRILL;
}

/* ------------------------------------------------------------------------ */
/* Selectors                                                                */

static int parse_addr(const char *s, uint32_t *addr)
{
	struct in_addr a;

	/* inet_pton takes exactly four decimal parts: no "10.1", no hex. */
	if (inet_pton(AF_INET, s, &a) != 1)
		return -EINVAL;
	*addr = a.s_addr;
	return 0;
}

int ag_ovr_sel__parse(struct ag_ovr_sel *sel, const char *text, bool endpoint, const char **problem)
{
	char buf[AG_OVR_SEL_MAX], addr[INET_ADDRSTRLEN];
	char *part[4];
	unsigned int n = 0, i;
	char *p;

	memset(sel, 0, sizeof(*sel));
	sel->endpoint = endpoint;
	if (strlen(text) >= sizeof(buf)) {
		*problem = "selector too long";
		return -EINVAL;
	}
	strcpy(buf, text);
	part[n++] = buf;
	for (p = buf; *p; p++) {
		if (*p != '/')
			continue;
		if (n == 3) {
			*problem = endpoint ? "want [ACCELERATOR/][REGION/]ADDRESS"
					    : "want [ACCELERATOR/]REGION";
			return -EINVAL;
		}
		*p = '\0';
		part[n++] = p + 1;
	}
	if (endpoint) {
		if (parse_addr(part[n - 1], &sel->addr)) {
			*problem = "want [ACCELERATOR/][REGION/]ADDRESS with an IPv4 address";
			return -EINVAL;
		}
	} else if (n > 2) {
		*problem = "want [ACCELERATOR/]REGION";
		return -EINVAL;
	}
	/* Names: everything but an endpoint selector's address. */
	for (i = 0; i < n - (endpoint ? 1 : 0); i++) {
		if (ag_config__check_name(part[i])) {
			*problem = "accelerator and region names are 1-63 characters of "
				   "A-Z a-z 0-9 . _ -";
			return -EINVAL;
		}
	}
	if (endpoint) {
		if (n == 2)
			strcpy(sel->either, part[0]);
		if (n == 3) {
			strcpy(sel->accel, part[0]);
			strcpy(sel->region, part[1]);
		}
		/* Canonical: the address as inet_ntop writes it. */
		inet_ntop(AF_INET, &sel->addr, addr, sizeof(addr));
		if (n == 1)
			snprintf(sel->text, sizeof(sel->text), "%s", addr);
		else if (n == 2)
			snprintf(sel->text, sizeof(sel->text), "%s/%s", sel->either, addr);
		else
			snprintf(sel->text, sizeof(sel->text), "%s/%s/%s", sel->accel, sel->region,
				 addr);
	} else {
		if (n == 2)
			strcpy(sel->accel, part[0]);
		strcpy(sel->region, part[n - 1]);
		snprintf(sel->text, sizeof(sel->text), "%s%s%s", sel->accel, n == 2 ? "/" : "",
			 sel->region);
	}
	return 0;
}

bool ag_ovr_sel__match_backend(const struct ag_ovr_sel *sel, const struct ag_plan *plan,
			       const struct ag_plan_backend *b)
{
	const char *accel = plan->listeners[b->listener_id].accel->name;
	const char *region = plan->groups[b->group_id].cfg->region;

	if (!sel->endpoint || sel->addr != b->addr)
		return false;
	if (sel->accel[0] && strcmp(sel->accel, accel))
		return false;
	if (sel->region[0] && strcmp(sel->region, region))
		return false;
	if (sel->either[0] && strcmp(sel->either, accel) && strcmp(sel->either, region))
		return false;
	return true;
}

bool ag_ovr_sel__match_group(const struct ag_ovr_sel *sel, const struct ag_plan *plan,
			     const struct ag_plan_group *g)
{
	if (sel->endpoint || strcmp(sel->region, g->cfg->region))
		return false;
	return !sel->accel[0] || !strcmp(sel->accel, plan->listeners[g->listener_id].accel->name);
}

/* Marks in t (n_backends or n_groups entries) what sel matches; returns how many. */
static unsigned int sel_mark(const struct ag_ovr_sel *sel, const struct ag_plan *plan, bool *t)
{
	unsigned int i, n = 0;

	if (sel->endpoint) {
		for (i = 0; i < plan->n_backends; i++) {
			t[i] = ag_ovr_sel__match_backend(sel, plan, &plan->backends[i]);
			n += t[i];
		}
	} else {
		for (i = 0; i < plan->n_groups; i++) {
			t[i] = ag_ovr_sel__match_group(sel, plan, &plan->groups[i]);
			n += t[i];
		}
	}
	return n;
}

unsigned int ag_ovr_sel__count(const struct ag_ovr_sel *sel, const struct ag_plan *plan)
{
	unsigned int i, n = 0;

	if (sel->endpoint) {
		for (i = 0; i < plan->n_backends; i++)
			n += ag_ovr_sel__match_backend(sel, plan, &plan->backends[i]);
	} else {
		for (i = 0; i < plan->n_groups; i++)
			n += ag_ovr_sel__match_group(sel, plan, &plan->groups[i]);
	}
	return n;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                   */

/* The config file's key for each value, so a refusal reads the same. */
static const char *value_key(enum ag_ovr_kind k)
{
	return k == AG_OVR_DIAL ? "traffic_dial" : "weight";
}

static const char *check_value(enum ag_ovr_kind k, long long v)
{
	return k == AG_OVR_DIAL ? ag_config__check_dial(v) : ag_config__check_weight(v);
}

int ag_ovr__value(enum ag_ovr_kind k, const char *text, int *value, char *msg, size_t len)
{
	const char *problem;
	long long v;
	char *end;

	if (kind_is_flag(k)) {
		*value = 1;
		return 0;
	}
	if ((unsigned int)k >= AG_OVR__MAX || !text) {
		snprintf(msg, len, "no value");
		return -EINVAL;
	}
	errno = 0;
	v = strtoll(text, &end, 10);
	if (!text[0] || *end || text[0] == ' ' || text[0] == '+') {
		snprintf(msg, len, "%s: must be an integer (got \"%.32s\")", value_key(k), text);
		return -EINVAL;
	}
	if (errno == ERANGE) {
		/* Out of long long: no validator accepts it; name it as written. */
		snprintf(msg, len, "%s: %s (got %.32s)", value_key(k), check_value(k, LLONG_MAX),
			 text);
		return -EINVAL;
	}
	problem = check_value(k, v);
	if (problem) {
		snprintf(msg, len, "%s: %s (got %lld)", value_key(k), problem, v);
		return -EINVAL;
	}
	*value = (int)v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Lists                                                                    */

void ag_overrides__init(struct ag_overrides *o)
{
	memset(o, 0, sizeof(*o));
}

void ag_overrides__free(struct ag_overrides *o)
{
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static int reserve(struct ag_overrides *o, unsigned int n)
{
	struct ag_override *v;
	unsigned int cap;

	if (n <= o->cap)
		return 0;
	cap = o->cap ? o->cap : 8;
	while (cap < n)
		cap *= 2;
	v = realloc(o->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	o->v = v;
	o->cap = cap;
	return 0;
}

int ag_overrides__copy(struct ag_overrides *dst, const struct ag_overrides *src)
{
	struct ag_overrides t;

	ag_overrides__init(&t);
	if (reserve(&t, src->n))
		return -ENOMEM;
	if (src->n)
		memcpy(t.v, src->v, src->n * sizeof(*t.v));
	t.n = src->n;
	ag_overrides__free(dst);
	*dst = t;
	return 0;
}

static bool same_override(const struct ag_override *a, const struct ag_override *b)
{
	return a->kind == b->kind && a->value == b->value && a->sel.endpoint == b->sel.endpoint &&
	       !strcmp(a->sel.text, b->sel.text);
}

bool ag_overrides__equal(const struct ag_overrides *a, const struct ag_overrides *b)
{
	unsigned int i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (!same_override(&a->v[i], &b->v[i]))
			return false;
	return true;
}

static void compact(struct ag_overrides *o, const bool *dead)
{
	unsigned int i, n = 0;

	for (i = 0; i < o->n; i++)
		if (!dead[i])
			o->v[n++] = o->v[i];
	o->n = n;
}

/*
 * Tidy for plan (see ag_overrides__set): the final view stays exactly the
 * same, only overrides that cannot matter any more go.
 */
static int tidy(struct ag_overrides *o, const struct ag_plan *plan)
{
	unsigned int nt = plan->n_backends > plan->n_groups ? plan->n_backends : plan->n_groups;
	bool *covered[AG_OVR__MAX] = {NULL}, *state[AG_OVR__MAX] = {NULL};
	bool *t = NULL, *dead = NULL;
	unsigned int i, j, k, count;
	int err = -ENOMEM;

	if (!o->n)
		return 0;
	if (!nt)
		nt = 1;
	t = calloc(nt, sizeof(*t));
	dead = calloc(o->n, sizeof(*dead));
	if (!t || !dead)
		goto out;
	for (k = 0; k < AG_OVR__MAX; k++) {
		covered[k] = calloc(nt, sizeof(bool));
		state[k] = calloc(nt, sizeof(bool));
		if (!covered[k] || !state[k])
			goto out;
	}
	/* Newest first: an override whose every target a later one sets is dead. */
	for (i = o->n; i-- > 0;) {
		const struct ag_override *ov = &o->v[i];
		bool all = true;

		count = sel_mark(&ov->sel, plan, t);
		for (j = 0; j < nt; j++) {
			if (!t[j])
				continue;
			if (!covered[ov->kind][j])
				all = false;
			covered[ov->kind][j] = true;
		}
		dead[i] = count > 0 && all;
	}
	compact(o, dead);
	/* Oldest first: an undrain or restore of what nothing drained or failed is a no-op. */
	memset(dead, 0, o->n * sizeof(*dead));
	for (i = 0; i < o->n; i++) {
		const struct ag_override *ov = &o->v[i];
		bool change = false;

		if (!kind_is_flag(ov->kind))
			continue;
		count = sel_mark(&ov->sel, plan, t);
		for (j = 0; j < nt; j++) {
			if (!t[j])
				continue;
			if (state[ov->kind][j] != (ov->value != 0))
				change = true;
			state[ov->kind][j] = ov->value != 0;
		}
		dead[i] = count > 0 && !ov->value && !change;
	}
	compact(o, dead);
	err = 0;
out:
	for (k = 0; k < AG_OVR__MAX; k++) {
		free(covered[k]);
		free(state[k]);
	}
	free(t);
	free(dead);
	return err;
}

int ag_overrides__set(struct ag_overrides *o, const struct ag_override *ov,
		      const struct ag_plan *plan)
{
	int err;

	if ((unsigned int)ov->kind >= AG_OVR__MAX ||
	    ov->sel.endpoint != ag_ovr_kind__endpoint(ov->kind))
		return -EINVAL;
	if (!ag_ovr_sel__count(&ov->sel, plan))
		return -ENOENT;
	if (o->n >= AG_OVR_MAX)
		return -E2BIG;
	err = reserve(o, o->n + 1);
	if (err)
		return err;
	o->v[o->n++] = *ov;
	err = tidy(o, plan);
	if (err)
		o->n--;
	return err;
}

unsigned int ag_overrides__clear(struct ag_overrides *o, const struct ag_ovr_sel *sel,
				 const struct ag_plan *plan)
{
	unsigned int nb = plan->n_backends ? plan->n_backends : 1;
	unsigned int ng = plan->n_groups ? plan->n_groups : 1;
	unsigned int i, j, before = o->n, n = 0;
	bool *bs, *gs, *t;

	if (!sel) {
		o->n = 0;
		return before;
	}
	bs = calloc(nb, sizeof(*bs));
	gs = calloc(ng, sizeof(*gs));
	t = calloc(nb > ng ? nb : ng, sizeof(*t));
	if (!bs || !gs || !t) {
		/* Without memory only the exact selector text can be matched. */
		free(bs);
		free(gs);
		free(t);
		bs = gs = t = NULL;
	} else if (sel->endpoint) {
		sel_mark(sel, plan, bs);
	} else {
		sel_mark(sel, plan, gs);
		for (j = 0; j < plan->n_backends; j++)
			bs[j] = gs[plan->backends[j].group_id];
	}
	for (i = 0; i < o->n; i++) {
		const struct ag_override *ov = &o->v[i];
		bool hit = ov->sel.endpoint == sel->endpoint && !strcmp(ov->sel.text, sel->text);

		if (!hit && t) {
			const bool *want = ov->sel.endpoint ? bs : gs;
			unsigned int nt = ov->sel.endpoint ? plan->n_backends : plan->n_groups;

			sel_mark(&ov->sel, plan, t);
			for (j = 0; j < nt && !hit; j++)
				hit = t[j] && want[j];
		}
		if (!hit)
			o->v[n++] = *ov;
	}
	o->n = n;
	free(bs);
	free(gs);
	free(t);
	return before - n;
}

unsigned int ag_overrides__matches(const struct ag_overrides *o, unsigned int i,
				   const struct ag_plan *plan)
{
	return i < o->n ? ag_ovr_sel__count(&o->v[i].sel, plan) : 0;
}

void ag_overrides__apply(const struct ag_overrides *o, const struct ag_plan *plan,
			 struct ag_view_state *vs)
{
	unsigned int i, j;

	for (j = 0; j < plan->n_backends; j++) {
		vs->weight[j] = -1;
		vs->drained[j] = false;
	}
	for (j = 0; j < plan->n_groups; j++) {
		vs->dial[j] = -1;
		vs->drilled[j] = false;
	}
	for (i = 0; i < o->n; i++) {
		const struct ag_override *ov = &o->v[i];

		if (ov->sel.endpoint) {
			for (j = 0; j < plan->n_backends; j++) {
				if (!ag_ovr_sel__match_backend(&ov->sel, plan, &plan->backends[j]))
					continue;
				if (ov->kind == AG_OVR_WEIGHT)
					vs->weight[j] = (int16_t)ov->value;
				else
					vs->drained[j] = ov->value != 0;
			}
		} else {
			for (j = 0; j < plan->n_groups; j++) {
				if (!ag_ovr_sel__match_group(&ov->sel, plan, &plan->groups[j]))
					continue;
				if (ov->kind == AG_OVR_DIAL)
					vs->dial[j] = (int16_t)ov->value;
				else
					vs->drilled[j] = ov->value != 0;
			}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* State: JSON and the file                                                 */

void ag_ovr_state__init(struct ag_ovr_state *s)
{
	memset(s, 0, sizeof(*s));
}

void ag_ovr_state__free(struct ag_ovr_state *s)
{
	ag_overrides__free(&s->cur);
	ag_overrides__free(&s->rollback);
	memset(s, 0, sizeof(*s));
}

json_t *ag_overrides__to_json(const struct ag_overrides *o)
{
	json_t *arr = json_array(), *e;
	unsigned int i;

	if (!arr)
		return NULL;
	for (i = 0; i < o->n; i++) {
		const struct ag_override *ov = &o->v[i];

		e = json_pack("{s:s, s:s, s:o, s:I, s:s}", "kind", kind_names[ov->kind], "selector",
			      ov->sel.text, "value",
			      kind_is_flag(ov->kind) ? json_boolean(ov->value)
						     : json_integer(ov->value),
			      "set_at", (json_int_t)ov->set_at, "by", ov->by);
		if (!e || json_array_append_new(arr, e)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *ag_ovr_state__to_json(const struct ag_ovr_state *s)
{
	json_t *cur = ag_overrides__to_json(&s->cur), *pending = NULL, *root;

	if (!cur)
		return NULL;
	if (s->pending) {
		json_t *rb = ag_overrides__to_json(&s->rollback);

		if (!rb) {
			json_decref(cur);
			return NULL;
		}
		pending = json_pack("{s:I, s:s, s:o}", "deadline_ms", (json_int_t)s->deadline_ms,
				    "change", s->change, "rollback", rb);
		if (!pending) {
			json_decref(cur);
			return NULL;
		}
	}
	root = json_pack("{s:i, s:o, s:o}", "anygate_state", AG_OVR_STATE_VERSION, "overrides", cur,
			 "pending", pending ? pending : json_null());
	return root;
}

/* "WHERE[I]..." problems of one entry; returns -EINVAL. */
static int entry_err(char *msg, size_t len, const char *where, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int entry_err(char *msg, size_t len, const char *where, size_t i, const char *fmt, ...)
{
	int n = snprintf(msg, len, "%s[%zu]", where, i);
	va_list ap;

	if (n >= 0 && (size_t)n < len) {
		va_start(ap, fmt);
		vsnprintf(msg + n, len - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int list_from_json(struct ag_overrides *o, const json_t *arr, const char *where, char *msg,
			  size_t len)
{
	size_t i;
	json_t *e;

	if (!json_is_array(arr)) {
		snprintf(msg, len, "%s: must be an array", where);
		return -EINVAL;
	}
	if (json_array_size(arr) > AG_OVR_MAX) {
		snprintf(msg, len, "%s: more than %u overrides", where, AG_OVR_MAX);
		return -EINVAL;
	}
	if (reserve(o, json_array_size(arr)))
		return -ENOMEM;
	json_array_foreach(arr, i, e)
	{
		struct ag_override ov = {0};
		const char *kind, *sel, *problem, *by = "";
		json_t *val, *at;
		json_int_t v;
		unsigned int k;

		if (json_unpack(e, "{s:s, s:s, s:o}", "kind", &kind, "selector", &sel, "value",
				&val))
			return entry_err(msg, len, where, i,
					 ": want {\"kind\", \"selector\", \"value\"}");
		for (k = 0; k < AG_OVR__MAX && strcmp(kind, kind_names[k]); k++)
			;
		if (k == AG_OVR__MAX)
			return entry_err(msg, len, where, i,
					 ".kind: must be weight, drain, dial or drill "
					 "(got \"%.32s\")",
					 kind);
		ov.kind = k;
		if (ag_ovr_sel__parse(&ov.sel, sel, ag_ovr_kind__endpoint(k), &problem))
			return entry_err(msg, len, where, i, ".selector: %s (got \"%.64s\")",
					 problem, sel);
		if (kind_is_flag(k)) {
			if (!json_is_boolean(val))
				return entry_err(msg, len, where, i,
						 ".value: must be true or false");
			ov.value = json_is_true(val);
		} else {
			if (!json_is_integer(val))
				return entry_err(msg, len, where, i, ".value: must be an integer");
			/* The config file's validators, as for a value typed at the socket. */
			v = json_integer_value(val);
			problem = check_value(k, v);
			if (problem)
				return entry_err(msg, len, where, i,
						 ".value: %s (got %" JSON_INTEGER_FORMAT ")",
						 problem, v);
			ov.value = (int)v;
		}
		at = json_object_get(e, "set_at");
		if (at && !json_is_integer(at))
			return entry_err(msg, len, where, i, ".set_at: must be an integer");
		ov.set_at = at ? json_integer_value(at) : 0;
		if (json_is_string(json_object_get(e, "by")))
			by = json_string_value(json_object_get(e, "by"));
		snprintf(ov.by, sizeof(ov.by), "%s", by);
		o->v[o->n++] = ov;
	}
	return 0;
}

int ag_ovr_state__from_json(struct ag_ovr_state *s, const json_t *j, char *msg, size_t len)
{
	json_t *ver, *pending;
	int err;

	ag_ovr_state__free(s);
	if (!json_is_object(j)) {
		snprintf(msg, len, "not a JSON object");
		return -EINVAL;
	}
	ver = json_object_get(j, "anygate_state");
	if (!json_is_integer(ver) || json_integer_value(ver) != AG_OVR_STATE_VERSION) {
		snprintf(msg, len,
			 "anygate_state: must be %d (the state format this anygated reads)",
			 AG_OVR_STATE_VERSION);
		return -EINVAL;
	}
	err = list_from_json(&s->cur, json_object_get(j, "overrides"), "overrides", msg, len);
	if (err)
		goto fail;
	pending = json_object_get(j, "pending");
	if (pending && !json_is_null(pending)) {
		const char *change;
		json_int_t deadline;

		if (json_unpack((json_t *)pending, "{s:I, s:s}", "deadline_ms", &deadline, "change",
				&change)) {
			snprintf(msg, len,
				 "pending: want {\"deadline_ms\", \"change\", \"rollback\"}");
			err = -EINVAL;
			goto fail;
		}
		err = list_from_json(&s->rollback, json_object_get(pending, "rollback"),
				     "pending.rollback", msg, len);
		if (err)
			goto fail;
		s->pending = true;
		s->deadline_ms = deadline;
		snprintf(s->change, sizeof(s->change), "%s", change);
	}
	return 0;
fail:
	ag_ovr_state__free(s);
	return err;
}

static int make_dir(const char *dir)
{
	struct stat st;

	if (!mkdir(dir, 0755))
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(dir, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* mkdir -p of path's directory (a fresh host may have no /var/lib/anygate). */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];
	char *p;
	int err;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		err = make_dir(dir);
		if (err)
			return err;
		*p = '/';
	}
	return make_dir(dir);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

int ag_ovr_state__save(const struct ag_ovr_state *s, const char *path, char *msg, size_t len)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *step = "encoding";
	json_t *j = NULL;
	char *text = NULL, *slash;
	int fd = -1, dfd, err;

	err = make_parent(path);
	if (err) {
		step = "creating its directory";
		goto fail;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
		err = -ENAMETOOLONG;
		goto fail;
	}
	err = -ENOMEM;
	j = ag_ovr_state__to_json(s);
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	if (!text)
		goto fail;
	step = "creating a temporary file";
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	step = "writing";
	if (fchmod(fd, 0640)) {
		err = -errno;
		goto fail_unlink;
	}
	err = write_all(fd, text, strlen(text));
	if (!err)
		err = write_all(fd, "\n", 1);
	if (err)
		goto fail_unlink;
	step = "fsync";
	if (fsync(fd)) {
		err = -errno;
		goto fail_unlink;
	}
	step = "closing";
	err = close(fd) ? -errno : 0;
	fd = -1;
	if (err)
		goto fail_unlink;
	step = "renaming the temporary file over it";
	if (rename(tmp, path)) {
		err = -errno;
		goto fail_unlink;
	}
	/* The rename is durable only once the directory is. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	json_decref(j);
	free(text);
	return 0;
fail_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
fail:
	snprintf(msg, len, "%s: %s: %s", path, step, strerror(-err));
	json_decref(j);
	free(text);
	return err;
}

int ag_ovr_state__load(struct ag_ovr_state *s, const char *path, char *msg, size_t len)
{
	json_error_t jerr;
	json_t *j;
	FILE *f;
	int err;

	ag_ovr_state__free(s);
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		snprintf(msg, len, "%s: %s", path, strerror(errno));
		return err;
	}
	j = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (!j) {
		snprintf(msg, len, "%s:%d: not valid JSON: %s", path, jerr.line, jerr.text);
		return -EINVAL;
	}
	{
		char inner[256];

		err = ag_ovr_state__from_json(s, j, inner, sizeof(inner));
		if (err)
			snprintf(msg, len, "%s: %s", path,
				 err == -ENOMEM ? "out of memory" : inner);
	}
	json_decref(j);
	return err;
}
