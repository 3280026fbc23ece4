/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * anygatectl: the operator's command line for anygated's control socket
 * (docs/control.md). It knows no daemon command itself: it sends the words,
 * and renders whatever JSON comes back, so new commands need no client change.
 * Only `check FILE` runs locally: the config validator anygated itself uses.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "ctl_client.h"
#include "json_out.h"
#include "loop.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: anygatectl [-s SOCKET] [--json] [--timeout SEC] COMMAND [ARG...]\n"
		     "       anygatectl [--json] check FILE\n"
		     "       anygatectl [-s SOCKET] [--json] check [--daemon [FILE]]\n"
		     "\n"
		     "Sends COMMAND to anygated's control socket and prints the reply.\n"
		     "`anygatectl help` lists the daemon's commands; `check FILE` validates a\n"
		     "configuration file locally (no daemon needed), as `anygated --check` does;\n"
		     "`check` alone has anygated check its own config file (what a reload would\n"
		     "read), `check --daemon FILE` has it check FILE as it sees it.\n"
		     "\n"
		     "  -s, --socket PATH   control socket (default $ANYGATE_SOCKET, else\n"
		     "                      " AG_CTL_DEFAULT_SOCKET ")\n"
		     "  -j, --json          print the reply's JSON data (or the error object)\n"
		     "  -t, --timeout SEC   give up after SEC seconds (default 10; 0 = never)\n"
		     "  -V, --version       print anygatectl's version\n"
		     "  -h, --help          this text\n"
		     "\n"
		     "exit codes:\n"
		     "  0  ok\n"
		     "  1  the command failed (anygated's message on stderr)\n"
		     "  2  usage: bad options, unknown command or wrong arguments\n"
		     "  3  cannot connect to the socket\n"
		     "  4  denied: the command needs root or the admin group\n"
		     "  5  protocol mismatch, or a garbled or missing reply\n"
		     "  6  timeout\n");
}

static int print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!s)
		return -ENOMEM;
	printf("%s\n", s);
	free(s);
	return 0;
}

/* `check FILE`: the same code path as `anygated --check FILE`. */
static int check_file(const char *path, bool json)
{
	struct ag_errors errs;
	struct ag_config *cfg;
	json_t *out = NULL, *list;
	unsigned int i;
	int ret;

	ag_errors__init(&errs);
	cfg = ag_config__load(path, &errs);
	if (cfg) {
		if (json)
			out = json_pack("{s:s, s:b}", "file", path, "ok", 1);
		else
			printf("%s: ok\n", path);
		ag_config__free(cfg);
		ret = AG_EXIT_OK;
	} else {
		/* The loader reports file problems itself; this covers ENOMEM. */
		if (!errs.count)
			ag_errors__add(&errs, path, 0, NULL, "%s", strerror(errno));
		list = json ? json_array() : NULL;
		for (i = 0; i < errs.count; i++) {
			fprintf(stderr, "%s\n", errs.msgs[i]);
			if (list)
				json_array_append_new(list, json_string(errs.msgs[i]));
		}
		if (json)
			out = json_pack("{s:b, s:s, s:s, s:o}", "ok", 0, "error",
					"configuration has errors", "code", "invalid", "errors",
					list ? list : json_array());
		ret = AG_EXIT_FAILED;
	}
	if (out) {
		print_json(out);
		json_decref(out);
	}
	ag_errors__free(&errs);
	return ret;
}

static int run_command(const char *path, uint64_t deadline, bool json, int argc, char **argv)
{
	struct ag_ctlc c;
	json_t *reply = NULL, *data;
	int err, ret;

	err = ag_ctlc__connect(&c, path, deadline);
	if (err) {
		fprintf(stderr, "anygatectl: %s\n", c.err);
		return ag_ctlc__connect_exit(err);
	}
	err = ag_ctlc__request(&c, argc, argv, &reply);
	if (err) {
		fprintf(stderr, "anygatectl: %s\n", c.err);
		ret = ag_ctlc__request_exit(err);
		goto out;
	}
	ret = ag_ctlc__reply_exit(reply);
	if (ret != AG_EXIT_OK) {
		fprintf(stderr, "anygatectl: %s\n",
			json_string_value(json_object_get(reply, "error")));
		if (json) {
			json_object_del(reply, "data");
			print_json(reply);
		}
		goto out;
	}
	data = json_object_get(reply, "data");
	err = json ? print_json(data) : ag_json_out__human(stdout, data);
	if (err) {
		fprintf(stderr, "anygatectl: printing the reply: %s\n", strerror(-err));
		ret = AG_EXIT_FAILED;
	}
out:
	json_decref(reply);
	ag_ctlc__close(&c);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"socket", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'}, {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},	       {},
	};
	const char *path = getenv("ANYGATE_SOCKET");
	double timeout = 10.0;
	uint64_t deadline = 0;
	bool json = false;
	char *end;
	int c;

	if (!path || !path[0])
		path = AG_CTL_DEFAULT_SOCKET;
	/* "+": options end at the command, so its arguments may start with '-'. */
	while ((c = getopt_long(argc, argv, "+s:jt:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 't':
			errno = 0;
			timeout = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(timeout) || timeout < 0 ||
			    timeout > 86400) {
				fprintf(stderr,
					"anygatectl: --timeout: want seconds 0-86400 "
					"(got \"%s\")\n",
					optarg);
				return AG_EXIT_USAGE;
			}
			break;
		case 'V':
			printf("anygatectl %s (control protocol %d)\n", AG_VERSION,
			       AG_CTL_PROTOCOL);
			return AG_EXIT_OK;
		case 'h':
			usage(stdout);
			return AG_EXIT_OK;
		default:
			usage(stderr);
			return AG_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (!argc) {
		usage(stderr);
		return AG_EXIT_USAGE;
	}
	/* `check FILE` runs here; `check` alone or `check --daemon [FILE]` asks anygated. */
	if (!strcmp(argv[0], "check") && argc >= 2 && !strcmp(argv[1], "--daemon")) {
		argv[1] = argv[0];
		argv++;
		argc--;
	} else if (!strcmp(argv[0], "check") && argc != 1) {
		if (argc != 2) {
			fprintf(stderr, "usage: anygatectl check FILE | check [--daemon [FILE]]\n");
			return AG_EXIT_USAGE;
		}
		return check_file(argv[1], json);
	}
	if (timeout > 0)
		deadline = ag_now_ns() + (uint64_t)(timeout * 1e9);
	return run_command(path, deadline, json, argc, argv);
}
