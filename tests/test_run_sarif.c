/* SPDX-License-Identifier: MIT */
/*
 * The CI formats (issue 15, item 3): SARIF 2.1.0 from `run --sarif FILE`,
 * `run --format sarif` and `report --format sarif`, and GitHub Actions
 * annotations under GITHUB_ACTIONS=true.
 *
 * The SARIF documents are parsed (tests/lib/json.h) and checked against
 * the parts of the OASIS SARIF 2.1.0 schema they use, written out below by
 * hand: for every object type leakwatch emits, its required properties,
 * the properties the schema allows (the schema says additionalProperties:
 * false for each), their JSON types and the schema's minima (startLine >= 1,
 * non-empty threadFlows and locations).  The schema itself is not vendored
 * (its OASIS licence terms are not ours to redistribute); when
 * LW_SARIF_SCHEMA names a copy of sarif-schema-2.1.0.json and a python3 on
 * PATH has the jsonschema module, one more test validates against it.
 *
 * Fixtures: supp.c (sockets, files and heap blocks from known functions),
 * leak_basic.c (TCP connections at "LW-MARK: leak_basic.socket"), fdkinds.c
 * (one file left open at "LW-MARK: fdkinds.onefile", in a directory the
 * test names).
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/testlib.h"
#include "render_sarif.h"

#define FIX(name) LW_BUILD_DIR "/fixtures/" name

static char tmp[PATH_MAX];
static void setup(void) { lw_tmpdir(tmp, sizeof tmp); }
static void teardown(void) { lw_rmdir(tmp); }
TestSuite(run_sarif, .init = setup, .fini = teardown, .timeout = 180);

/* ---- the schema, the parts leakwatch uses ---------------------------------------- */

enum sty {
	S_LOG, S_RUN, S_TOOL, S_COMPONENT, S_RULE, S_MFMSG, S_RCONF, S_RESULT, S_MSG, S_LOCATION, S_PHYS,
	S_ARTLOC, S_REGION, S_LOGICAL, S_STACK, S_FRAME, S_CODEFLOW, S_THREADFLOW, S_TFLOC, S_INVOCATION,
	S_NOTIFICATION, S_BAG, S_STRMAP, S_NTYPES
};

/* Each object type: what it requires, and every property the schema defines for it. */
static const struct {
	const char *name, *required, *allowed;
} stypes[S_NTYPES] = {
	[S_LOG] = { "sarifLog", "version runs", "$schema version runs inlineExternalProperties properties" },
	[S_RUN] = { "run", "tool",
		    "tool invocations conversion language versionControlProvenance originalUriBaseIds artifacts "
		    "logicalLocations graphs results automationDetails runAggregates baselineGuid redactionTokens "
		    "defaultEncoding defaultSourceLanguage newlineSequences columnKind externalPropertyFileReferences "
		    "threadFlowLocations taxonomies addresses translations policies webRequests webResponses "
		    "specialLocations properties" },
	[S_TOOL] = { "tool", "driver", "driver extensions properties" },
	[S_COMPONENT] = { "toolComponent", "name",
			  "guid name organization product productSuite shortDescription fullDescription fullName "
			  "version semanticVersion dottedQuadFileVersion releaseDateUtc downloadUri informationUri "
			  "globalMessageStrings notifications rules taxa locations language contents isComprehensive "
			  "localizedDataSemanticVersion minimumRequiredLocalizedDataSemanticVersion associatedComponent "
			  "translationMetadata supportedTaxonomies properties" },
	[S_RULE] = { "reportingDescriptor", "id",
		     "id deprecatedIds guid deprecatedGuids name deprecatedNames shortDescription fullDescription "
		     "messageStrings defaultConfiguration helpUri help relationships properties" },
	[S_MFMSG] = { "multiformatMessageString", "text", "text markdown properties" },
	[S_RCONF] = { "reportingConfiguration", "", "enabled level rank parameters properties" },
	[S_RESULT] = { "result", "message",
		       "ruleId ruleIndex rule kind level message analysisTarget locations guid correlationGuid "
		       "occurrenceCount partialFingerprints fingerprints stacks codeFlows graphs graphTraversals "
		       "relatedLocations suppressions baselineState rank attachments hostedViewerUri workItemUris "
		       "provenance fixes taxa webRequest webResponse properties" },
	[S_MSG] = { "message", "text", "text markdown id arguments properties" },
	[S_LOCATION] = { "location", "", "id physicalLocation logicalLocations message annotations relationships properties" },
	[S_PHYS] = { "physicalLocation", "artifactLocation", "address artifactLocation region contextRegion properties" },
	[S_ARTLOC] = { "artifactLocation", "uri", "uri uriBaseId index description properties" },
	[S_REGION] = { "region", "startLine",
		       "startLine startColumn endLine endColumn charOffset charLength byteOffset byteLength snippet "
		       "message sourceLanguage properties" },
	[S_LOGICAL] = { "logicalLocation", "name", "name index fullyQualifiedName decoratedName parentIndex kind properties" },
	[S_STACK] = { "stack", "frames", "message frames properties" },
	[S_FRAME] = { "stackFrame", "", "location module threadId parameters properties" },
	[S_CODEFLOW] = { "codeFlow", "threadFlows", "message threadFlows properties" },
	[S_THREADFLOW] = { "threadFlow", "locations", "id message initialState immutableState locations properties" },
	[S_TFLOC] = { "threadFlowLocation", "",
		      "index location stack kinds taxa module state nestingLevel executionOrder executionTimeUtc "
		      "importance webRequest webResponse properties" },
	[S_INVOCATION] = { "invocation", "executionSuccessful",
			   "commandLine arguments responseFiles startTimeUtc endTimeUtc exitCode "
			   "ruleConfigurationOverrides notificationConfigurationOverrides toolExecutionNotifications "
			   "toolConfigurationNotifications exitCodeDescription exitSignalName exitSignalNumber "
			   "processStartFailureMessage executionSuccessful machine account processId executableLocation "
			   "workingDirectory environmentVariables stdin stdout stderr stdoutStderr properties" },
	[S_NOTIFICATION] = { "notification", "message",
			     "locations message level threadId timeUtc exception descriptor associatedRule properties" },
	[S_BAG] = { "propertyBag", "", NULL },   /* anything; "tags" unique strings */
	[S_STRMAP] = { "map of strings", "", NULL },
};

/* What a property of a type holds: 'o' object, 'a' array of objects, 'm' map of
 * objects (of type child), 's' string, 'i' integer, 'b' boolean, 'l' level. */
static const struct {
	enum sty parent;
	const char *key;
	char shape;
	enum sty child;
} sprops[] = {
	{ S_LOG, "$schema", 's', 0 }, { S_LOG, "version", 's', 0 }, { S_LOG, "runs", 'a', S_RUN },
	{ S_RUN, "tool", 'o', S_TOOL }, { S_RUN, "results", 'a', S_RESULT }, { S_RUN, "invocations", 'a', S_INVOCATION },
	{ S_RUN, "originalUriBaseIds", 'm', S_ARTLOC }, { S_RUN, "properties", 'o', S_BAG },
	{ S_TOOL, "driver", 'o', S_COMPONENT },
	{ S_COMPONENT, "name", 's', 0 }, { S_COMPONENT, "version", 's', 0 }, { S_COMPONENT, "informationUri", 's', 0 },
	{ S_COMPONENT, "rules", 'a', S_RULE }, { S_COMPONENT, "properties", 'o', S_BAG },
	{ S_RULE, "id", 's', 0 }, { S_RULE, "name", 's', 0 }, { S_RULE, "shortDescription", 'o', S_MFMSG },
	{ S_RULE, "fullDescription", 'o', S_MFMSG }, { S_RULE, "help", 'o', S_MFMSG }, { S_RULE, "helpUri", 's', 0 },
	{ S_RULE, "defaultConfiguration", 'o', S_RCONF }, { S_RULE, "properties", 'o', S_BAG },
	{ S_MFMSG, "text", 's', 0 }, { S_MFMSG, "markdown", 's', 0 },
	{ S_RCONF, "level", 'l', 0 }, { S_RCONF, "enabled", 'b', 0 },
	{ S_RESULT, "ruleId", 's', 0 }, { S_RESULT, "ruleIndex", 'i', 0 }, { S_RESULT, "level", 'l', 0 },
	{ S_RESULT, "message", 'o', S_MSG }, { S_RESULT, "locations", 'a', S_LOCATION },
	{ S_RESULT, "partialFingerprints", 'o', S_STRMAP }, { S_RESULT, "fingerprints", 'o', S_STRMAP },
	{ S_RESULT, "stacks", 'a', S_STACK }, { S_RESULT, "codeFlows", 'a', S_CODEFLOW },
	{ S_RESULT, "properties", 'o', S_BAG },
	{ S_MSG, "text", 's', 0 }, { S_MSG, "markdown", 's', 0 },
	{ S_LOCATION, "physicalLocation", 'o', S_PHYS }, { S_LOCATION, "logicalLocations", 'a', S_LOGICAL },
	{ S_LOCATION, "message", 'o', S_MSG }, { S_LOCATION, "properties", 'o', S_BAG },
	{ S_PHYS, "artifactLocation", 'o', S_ARTLOC }, { S_PHYS, "region", 'o', S_REGION },
	{ S_ARTLOC, "uri", 's', 0 }, { S_ARTLOC, "uriBaseId", 's', 0 }, { S_ARTLOC, "index", 'i', 0 },
	{ S_REGION, "startLine", 'i', 0 }, { S_REGION, "endLine", 'i', 0 },
	{ S_LOGICAL, "name", 's', 0 }, { S_LOGICAL, "kind", 's', 0 }, { S_LOGICAL, "decoratedName", 's', 0 },
	{ S_LOGICAL, "fullyQualifiedName", 's', 0 },
	{ S_STACK, "message", 'o', S_MSG }, { S_STACK, "frames", 'a', S_FRAME }, { S_STACK, "properties", 'o', S_BAG },
	{ S_FRAME, "location", 'o', S_LOCATION }, { S_FRAME, "module", 's', 0 }, { S_FRAME, "properties", 'o', S_BAG },
	{ S_CODEFLOW, "message", 'o', S_MSG }, { S_CODEFLOW, "threadFlows", 'a', S_THREADFLOW },
	{ S_THREADFLOW, "locations", 'a', S_TFLOC }, { S_THREADFLOW, "message", 'o', S_MSG },
	{ S_TFLOC, "location", 'o', S_LOCATION }, { S_TFLOC, "nestingLevel", 'i', 0 },
	{ S_INVOCATION, "executionSuccessful", 'b', 0 }, { S_INVOCATION, "toolExecutionNotifications", 'a', S_NOTIFICATION },
	{ S_INVOCATION, "exitCode", 'i', 0 }, { S_INVOCATION, "properties", 'o', S_BAG },
	{ S_NOTIFICATION, "message", 'o', S_MSG }, { S_NOTIFICATION, "level", 'l', 0 },
};

static int word_in(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; (p = strstr(p, w)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* "path.key" or "path[i]" (key NULL) for the failure messages, cut to fit. */
static void path_join(char *out, size_t len, const char *path, const char *key, size_t i)
{
	int w = key ? snprintf(out, len, "%s.%s", path, key) : snprintf(out, len, "%s[%zu]", path, i);
	if (w >= (int)len && len > 4)
		memcpy(out + len - 4, "...", 4);
}

static int is_int(const struct tj *v)
{
	return v && v->type == TJ_NUM && v->num == floor(v->num);
}

static void check_obj(const struct tj *v, enum sty t, const char *path);

static void check_value(const struct tj *v, char shape, enum sty child, const char *path)
{
	char sub[512];
	switch (shape) {
	case 's': cr_assert(v->type == TJ_STR, "%s: not a string", path); break;
	case 'i': cr_assert(is_int(v), "%s: not an integer", path); break;
	case 'b': cr_assert(v->type == TJ_BOOL, "%s: not a boolean", path); break;
	case 'l':
		cr_assert(v->type == TJ_STR && word_in("none note warning error", v->str), "%s: bad level", path);
		break;
	case 'o': check_obj(v, child, path); break;
	case 'a':
		cr_assert(v->type == TJ_ARR, "%s: not an array", path);
		for (size_t i = 0; i < v->n; i++) {
			path_join(sub, sizeof sub, path, NULL, i);
			check_obj(v->items[i], child, sub);
		}
		break;
	case 'm':
		cr_assert(v->type == TJ_OBJ, "%s: not an object", path);
		for (size_t i = 0; i < v->n; i++) {
			path_join(sub, sizeof sub, path, v->keys[i], 0);
			check_obj(v->items[i], child, sub);
		}
		break;
	}
}

static void check_obj(const struct tj *v, enum sty t, const char *path)
{
	char sub[512], req[512];
	cr_assert(v && v->type == TJ_OBJ, "%s: %s is not an object", path, stypes[t].name);
	snprintf(req, sizeof req, "%s", stypes[t].required);
	for (char *save = NULL, *w = strtok_r(req, " ", &save); w; w = strtok_r(NULL, " ", &save))
		cr_assert_not_null(tj_get(v, w), "%s: %s without its required '%s'", path, stypes[t].name, w);
	if (t == S_STRMAP) {
		for (size_t i = 0; i < v->n; i++)
			cr_assert(v->items[i]->type == TJ_STR, "%s.%s: not a string", path, v->keys[i]);
		return;
	}
	if (t == S_BAG) {
		const struct tj *tags = tj_get(v, "tags");
		if (tags) {
			cr_assert(tags->type == TJ_ARR, "%s.tags: not an array", path);
			for (size_t i = 0; i < tags->n; i++) {
				cr_assert(tags->items[i]->type == TJ_STR, "%s.tags: not strings", path);
				for (size_t k = 0; k < i; k++)
					cr_assert_str_neq(tags->items[i]->str, tags->items[k]->str, "%s.tags: not unique", path);
			}
		}
		return;
	}
	for (size_t i = 0; i < v->n; i++) {
		const char *k = v->keys[i];
		cr_assert(word_in(stypes[t].allowed, k), "%s: '%s' is no property of %s", path, k, stypes[t].name);
		path_join(sub, sizeof sub, path, k, 0);
		size_t p = 0;
		while (p < sizeof sprops / sizeof sprops[0] && !(sprops[p].parent == t && !strcmp(sprops[p].key, k)))
			p++;
		cr_assert(p < sizeof sprops / sizeof sprops[0], "%s: the test does not know %s.%s (add it)", sub,
			  stypes[t].name, k);
		check_value(v->items[i], sprops[p].shape, sprops[p].child, sub);
	}
	/* the minima and the rules the schema states beyond types */
	if (t == S_LOG)
		cr_assert_str_eq(tj_str(v, "version"), "2.1.0");
	if (t == S_REGION)
		cr_assert_geq(tj_num(v, "startLine", 0), 1, "%s: startLine below 1", path);
	if (t == S_CODEFLOW)
		cr_assert_geq(tj_len(tj_get(v, "threadFlows")), 1, "%s: no threadFlows", path);
	if (t == S_THREADFLOW)
		cr_assert_geq(tj_len(tj_get(v, "locations")), 1, "%s: no locations", path);
	if (t == S_RESULT && tj_get(v, "ruleIndex"))
		cr_assert_geq(tj_num(v, "ruleIndex", -1), 0, "%s: ruleIndex below 0", path);
	/* GitHub code scanning refuses an upload with one result it cannot place */
	if (t == S_RESULT)
		cr_assert_not_null(tj_str(tj_get(tj_get(tj_at(tj_get(v, "locations"), 0), "physicalLocation"),
					      "artifactLocation"), "uri"),
				   "%s: no physicalLocation.artifactLocation.uri", path);
}

/* ---- helpers ---------------------------------------------------------------------- */

static struct tj *sarif_parse(const char *text)
{
	cr_assert_not_null(text, "no SARIF written");
	struct tj *d = tj_parse(text);
	cr_assert_not_null(d, "not JSON: %.400s", text);
	check_obj(d, S_LOG, "$");
	cr_assert_eq(tj_len(tj_get(d, "runs")), 1, "one run");
	return d;
}

static struct tj *sarif_load(const char *path)
{
	char *text = slurp(path);
	struct tj *d = sarif_parse(text);
	free(text);
	return d;
}

static struct tj *run0(const struct tj *d) { return tj_at(tj_get(d, "runs"), 0); }
static struct tj *results(const struct tj *d) { return tj_get(run0(d), "results"); }

/* The site of a result: its first location's file and line. */
static const char *result_uri(const struct tj *res, int *line)
{
	struct tj *pl = tj_get(tj_at(tj_get(res, "locations"), 0), "physicalLocation");
	*line = (int)tj_num(tj_get(pl, "region"), "startLine", 0);
	return tj_str(tj_get(pl, "artifactLocation"), "uri");
}

/* The first result of rule `id` whose message contains `text`, or NULL. */
static struct tj *result_find(const struct tj *d, const char *id, const char *text)
{
	struct tj *rs = results(d);
	for (size_t i = 0; i < tj_len(rs); i++) {
		struct tj *r = tj_at(rs, i);
		const char *m = tj_str(tj_get(r, "message"), "text");
		if (!strcmp(tj_str(r, "ruleId"), id) && m && strstr(m, text))
			return r;
	}
	return NULL;
}

static const char *fingerprint(const struct tj *res, const char *key)
{
	const char *f = tj_str(tj_get(res, "partialFingerprints"), key);
	cr_assert_not_null(f, "no %s fingerprint", key);
	return f;
}

/* `leakwatch run --sarif FILE OPTS... -- CMD...`; the parsed document. */
static struct tj *run_sarif(const char *name, char *const env[], const char *const *opts, const char *const *cmd,
			    int want_status)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/%s", tmp, name);
	const char *all[32] = { "--sarif", path };
	int n = 2;
	for (int i = 0; opts && opts[i] && n < 31; i++)
		all[n++] = opts[i];
	all[n] = NULL;
	struct cmd_result r;
	lw_run_timed(&r, env, all, cmd, 120);
	cr_assert_eq(r.status, want_status, "status %d: %s", r.status, r.err);
	cmd_result_free(&r);
	return sarif_load(path);
}

static int marker(const char *src, const char *name)
{
	int line = marker_line(src, name);
	cr_assert_gt(line, 0, "no marker %s in %s", name, src);
	return line;
}

/* ---- SARIF ------------------------------------------------------------------------ */

Test(run_sarif, one_result_per_leak_group_at_its_line)
{
	char supp[PATH_MAX + 16];
	snprintf(supp, sizeof supp, "%s/s.supp", tmp);
	FILE *f = fopen(supp, "w");
	fputs("leak:known_cache\n", f);
	fclose(f);
	struct tj *d = run_sarif("supp.sarif", NULL, (const char *[]){ "--suppressions", supp, NULL },
				 (const char *[]){ FIX("supp"), NULL }, 0);
	struct tj *driver = tj_get(tj_get(run0(d), "tool"), "driver");
	cr_expect_str_eq(tj_str(driver, "name"), "leakwatch");
	cr_expect_not_null(tj_str(driver, "version"));
	const char *ids[] = { "LW001", "LW002", "LW003", "LW004" };
	cr_assert_eq(tj_len(tj_get(driver, "rules")), 4);
	for (size_t i = 0; i < 4; i++) {
		struct tj *rule = tj_at(tj_get(driver, "rules"), i);
		cr_expect_str_eq(tj_str(rule, "id"), ids[i]);
		cr_expect_not_null(tj_str(tj_get(rule, "shortDescription"), "text"));
		cr_expect_not_null(tj_str(tj_get(rule, "help"), "text"));
	}
	/* 2 socket groups, 2 file groups, new_leak's heap group (known_cache suppressed),
	 * kept_table's blocks still reachable: as run --junit counts them */
	struct tj *rs = results(d);
	cr_expect_eq(tj_len(rs), 5, "%zu results", tj_len(rs));
	size_t per_rule[4] = { 0 };
	for (size_t i = 0; i < tj_len(rs); i++) {
		struct tj *r = tj_at(rs, i);
		const char *id = tj_str(r, "ruleId");
		int idx = (int)tj_num(r, "ruleIndex", -1);
		cr_assert(idx >= 0 && idx < 4 && !strcmp(id, ids[idx]), "ruleIndex %d for %s", idx, id);
		per_rule[idx]++;
		cr_expect_str_eq(tj_str(r, "level"), "error");
		int line;
		const char *uri = result_uri(r, &line);
		cr_expect_str_eq(uri, "tests/fixtures/supp.c", "relative to the repository: %s", uri);
		cr_expect_str_eq(tj_str(tj_get(tj_get(tj_at(tj_get(r, "locations"), 0), "physicalLocation"),
					     "artifactLocation"), "uriBaseId"), "SRCROOT");
		cr_expect_gt(tj_len(tj_get(tj_at(tj_get(r, "stacks"), 0), "frames")), 1, "the whole stack");
	}
	cr_expect_eq(per_rule[0], 2);
	cr_expect_eq(per_rule[1], 2);
	cr_expect_eq(per_rule[2], 1);
	cr_expect_null(result_find(d, "LW003", "known_cache"), "suppressed: no result");

	struct tj *heap = result_find(d, "LW003", "new_leak");
	cr_assert_not_null(heap);
	int line;
	result_uri(heap, &line);
	cr_expect_eq(line, marker("tests/fixtures/supp.c", "supp.new"), "at the malloc of new_leak");
	cr_expect_not_null(strstr(tj_str(tj_get(heap, "message"), "text"), "3 heap blocks (96 B)"),
			   "%s", tj_str(tj_get(heap, "message"), "text"));
	/* main is in the stack and the code flow ends at the leak */
	struct tj *frames = tj_get(tj_at(tj_get(heap, "stacks"), 0), "frames");
	int have_main = 0;
	for (size_t i = 0; i < tj_len(frames); i++) {
		struct tj *ll = tj_at(tj_get(tj_get(tj_at(frames, i), "location"), "logicalLocations"), 0);
		have_main |= tj_str(ll, "name") && !strcmp(tj_str(ll, "name"), "main");
	}
	cr_expect(have_main, "main in the stack");
	struct tj *flow = tj_get(tj_at(tj_get(tj_at(tj_get(heap, "codeFlows"), 0), "threadFlows"), 0), "locations");
	struct tj *last = tj_at(flow, tj_len(flow) - 1);
	cr_expect_eq((int)tj_num(tj_get(tj_get(tj_get(last, "location"), "physicalLocation"), "region"), "startLine", 0),
		     line, "the code flow ends at the leak");
	struct tj *inv = tj_at(tj_get(run0(d), "invocations"), 0);
	cr_expect_eq(tj_num(inv, "executionSuccessful", -1), 1);
	tj_free(d);
}

Test(run_sarif, fingerprints_are_stable_across_runs_and_differ_between_sites)
{
	int leak_line = marker("tests/fixtures/leak_basic.c", "leak_basic.socket");
	/* different counts, ports, pids and times: the same leak */
	struct tj *a = run_sarif("a.sarif", NULL, (const char *[]){ "--kind", "sockets", NULL },
				 (const char *[]){ FIX("leak_basic"), "3", "1", NULL }, 0);
	struct tj *b = run_sarif("b.sarif", NULL, (const char *[]){ "--kind", "sockets", NULL },
				 (const char *[]){ FIX("leak_basic"), "5", "2", NULL }, 0);
	cr_assert_eq(tj_len(results(a)), 1, "one group of leaked connections");
	cr_assert_eq(tj_len(results(b)), 1);
	struct tj *ra = tj_at(results(a), 0), *rb = tj_at(results(b), 0);
	int la, lb;
	cr_expect_str_eq(result_uri(ra, &la), "tests/fixtures/leak_basic.c");
	cr_expect_eq(la, leak_line);
	result_uri(rb, &lb);
	cr_expect_eq(lb, leak_line);
	cr_expect_not_null(strstr(tj_str(tj_get(ra, "message"), "text"), "3 sockets left open (TCP -> 127.0.0.1:"));
	cr_expect_not_null(strstr(tj_str(tj_get(rb, "message"), "text"), "5 sockets left open"));
	cr_expect_str_eq(fingerprint(ra, "leakwatchStack/v1"), fingerprint(rb, "leakwatchStack/v1"));
	cr_expect_str_eq(fingerprint(ra, "leakwatchFunctions/v1"), fingerprint(rb, "leakwatchFunctions/v1"));

	/* other sites: every result of supp has its own fingerprint, none is leak_basic's */
	struct tj *c = run_sarif("c.sarif", NULL, NULL, (const char *[]){ FIX("supp"), NULL }, 0);
	struct tj *rs = results(c);
	cr_assert_geq(tj_len(rs), 6);
	for (size_t i = 0; i < tj_len(rs); i++) {
		const char *fi = fingerprint(tj_at(rs, i), "leakwatchStack/v1");
		cr_expect_str_neq(fi, fingerprint(ra, "leakwatchStack/v1"));
		cr_expect_eq(strlen(fi), 16);
		for (size_t k = 0; k < i; k++)
			cr_expect_str_neq(fi, fingerprint(tj_at(rs, k), "leakwatchStack/v1"), "results %zu and %zu", k, i);
	}
	/* and a second run of supp gives each of them again */
	struct tj *c2 = run_sarif("c2.sarif", NULL, NULL, (const char *[]){ FIX("supp"), NULL }, 0);
	cr_assert_eq(tj_len(results(c2)), tj_len(rs));
	for (size_t i = 0; i < tj_len(rs); i++)
		cr_expect_str_eq(fingerprint(tj_at(results(c2), i), "leakwatchStack/v1"),
				 fingerprint(tj_at(rs, i), "leakwatchStack/v1"));
	tj_free(a);
	tj_free(b);
	tj_free(c);
	tj_free(c2);
}

Test(run_sarif, format_sarif_and_report_give_the_same_results)
{
	/* run --format sarif --output -: the document alone on stdout, after the command's own line */
	struct cmd_result r;
	char keep[PATH_MAX + 32];
	lw_run_timed(&r, NULL, (const char *[]){ "--format", "sarif", "--output", "-", "--keep", "--kind", "sockets", NULL },
		     (const char *[]){ FIX("leak_basic"), "2", "0", NULL }, 120);
	cr_assert_eq(r.status, 0, "%s", r.err);
	const char *doc = strchr(r.out, '{');
	cr_assert_not_null(doc, "%s", r.out);
	cr_expect_eq(strncmp(r.out, "leak_basic: leaked 2, closed 0\n", (size_t)(doc - r.out)), 0,
		     "the program's stdout is its own: %s", r.out);
	struct tj *d = sarif_parse(doc);
	cr_assert_eq(tj_len(results(d)), 1);
	cr_expect_null(strstr(r.err, "sockets left open\n"), "no text summary with sarif: %s", r.err);
	const char *kept = strstr(r.err, "segments kept in ");
	cr_assert_not_null(kept, "%s", r.err);
	snprintf(keep, sizeof keep, "%.*s", (int)strcspn(kept + 17, "\n"), kept + 17);
	cmd_result_free(&r);

	/* report --format sarif of the kept segment names the same leak the same way */
	char seg[PATH_MAX + 64], out[1 << 16], err[4096];
	struct cmd_result ls;
	run_cmd(&ls, (char *[]){ "/bin/sh", "-c", "ls \"$0\"/leakwatch.* | head -1", keep, NULL }, NULL, 10);
	snprintf(seg, sizeof seg, "%.*s", (int)strcspn(ls.out, "\n"), ls.out);
	cmd_result_free(&ls);
	int st = cli_run((const char *[]){ "report", seg, "--kind", "sockets", "--format", "sarif", NULL }, (uid_t)-1, out,
			 sizeof out, err, sizeof err);
	rm_rf(keep);
	cr_assert_eq(st, 0, "%s", err);
	struct tj *rd = sarif_parse(out);
	cr_assert_eq(tj_len(results(rd)), 1);
	struct tj *x = tj_at(results(d), 0), *y = tj_at(results(rd), 0);
	cr_expect_str_eq(fingerprint(x, "leakwatchStack/v1"), fingerprint(y, "leakwatchStack/v1"));
	cr_expect_str_eq(tj_str(tj_get(x, "message"), "text"), tj_str(tj_get(y, "message"), "text"));
	struct tj *rinv = tj_at(tj_get(run0(rd), "invocations"), 0);
	cr_expect_null(tj_get(tj_get(rinv, "properties"), "command"), "report has no traced command");
	tj_free(d);
	tj_free(rd);
}

Test(run_sarif, outside_the_repository_paths_are_absolute_uris)
{
	/* the base is $GITHUB_WORKSPACE when set: here one the sources are not in */
	struct tj *d = run_sarif("ws.sarif", (char *[]){ "GITHUB_WORKSPACE=/nonexistent-checkout", NULL },
				 (const char *[]){ "--kind", "sockets", NULL }, (const char *[]){ FIX("leak_basic"), "1", "0", NULL }, 0);
	struct tj *res = tj_at(results(d), 0);
	int line;
	const char *uri = result_uri(res, &line);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof want, "file://%s/tests/fixtures/leak_basic.c", LW_SOURCE_DIR);
	cr_expect_str_eq(uri, want);
	cr_expect_null(tj_str(tj_get(tj_get(tj_at(tj_get(res, "locations"), 0), "physicalLocation"), "artifactLocation"),
			      "uriBaseId"), "an absolute URI has no base");
	struct tj *base = tj_get(tj_get(run0(d), "originalUriBaseIds"), "SRCROOT");
	cr_expect_str_eq(tj_str(base, "uri"), "file:///nonexistent-checkout/");
	tj_free(d);
}

Test(run_sarif, what_was_not_traced_makes_the_invocation_unsuccessful)
{
	struct tj *d = run_sarif("untraced.sarif", (char *[]){ "LEAKWATCH_DISABLE=1", NULL }, NULL,
				 (const char *[]){ "true", NULL }, 3);
	cr_expect_eq(tj_len(results(d)), 0);
	struct tj *inv = tj_at(tj_get(run0(d), "invocations"), 0);
	cr_expect_eq(tj_num(inv, "executionSuccessful", -1), 0);
	struct tj *note = tj_at(tj_get(inv, "toolExecutionNotifications"), 0);
	cr_assert_not_null(note);
	cr_expect_not_null(strstr(tj_str(tj_get(note, "message"), "text"), "not traced"), "%s",
			   tj_str(tj_get(note, "message"), "text"));
	tj_free(d);
}

Test(run_sarif, a_bad_file_is_refused_before_the_command_runs)
{
	char marker_file[PATH_MAX + 16];
	snprintf(marker_file, sizeof marker_file, "%s/ran", tmp);
	const char *bad[] = { "/nonexistent-dir/x.sarif", "/dev/null", tmp };
	for (size_t i = 0; i < 3; i++) {
		struct cmd_result r;
		lw_run_timed(&r, NULL, (const char *[]){ "--sarif", bad[i], NULL },
			     (const char *[]){ "touch", marker_file, NULL }, 30);
		cr_expect_eq(r.status, 2, "%s: %s", bad[i], r.err);
		cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
		cr_expect_not_null(strstr(r.err, "--sarif"), "%s", r.err);
		cr_expect_neq(access(marker_file, F_OK), 0, "the command ran");
		cmd_result_free(&r);
	}
}

Test(run_sarif, the_official_schema_accepts_the_document)
{
	const char *schema = getenv("LW_SARIF_SCHEMA");
	if (!schema || !*schema)
		cr_skip_test("LW_SARIF_SCHEMA does not name sarif-schema-2.1.0.json");
	struct cmd_result r;
	run_cmd(&r, (char *[]){ "python3", "-c", "import jsonschema", NULL }, NULL, 30);
	int have = r.status == 0;
	cmd_result_free(&r);
	if (!have)
		cr_skip_test("no python3 with the jsonschema module");
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/supp.sarif", tmp);
	lw_run_timed(&r, NULL, (const char *[]){ "--sarif", path, NULL }, (const char *[]){ FIX("supp"), NULL }, 120);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cmd_result_free(&r);
	run_cmd(&r, (char *[]){ "python3", "-c",
				"import json, sys, jsonschema\n"
				"s = json.load(open(sys.argv[1])); d = json.load(open(sys.argv[2]))\n"
				"e = list(jsonschema.Draft4Validator(s).iter_errors(d))\n"
				"[print(list(x.path), x.message[:300]) for x in e[:10]]\n"
				"sys.exit(1 if e else 0)\n",
				(char *)schema, path, NULL }, NULL, 60);
	cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
	cmd_result_free(&r);
}

/* A program without debug information (Debian's sh): no source line to
 * show, so the binary is the location, and the message names module+offset. */
Test(run_sarif, a_stripped_program_is_located_at_its_binary)
{
	struct tj *d = run_sarif("sh.sarif", NULL, (const char *[]){ "--kind", "fds", NULL },
				 (const char *[]){ "/bin/sh", "-c", "exec 3</dev/null; exit 0", NULL }, 0);
	cr_assert_eq(tj_len(results(d)), 1);
	struct tj *res = tj_at(results(d), 0);
	const char *msg = tj_str(tj_get(res, "message"), "text");
	cr_expect_not_null(strstr(msg, "1 file descriptor left open (/dev/null), opened at "), "%s", msg);
	cr_expect_null(strstr(msg, "__libc_start"), "never the C runtime's start: %s", msg);
	int line;
	const char *uri = result_uri(res, &line);
	if (line == 0) {
		/* no source line: the module of a frame of its own, as a file URI */
		cr_expect_eq(strncmp(uri, "file:///", 8), 0, "%s", uri);
		cr_expect_null(strstr(uri, "libc.so"), "%s", uri);
	}
	tj_free(d);
}

/* Sockets a Python program dropped, closed by its garbage collector: LW004,
 * a warning, located in the script (the repository here is the test's
 * directory), with the opening and the collector's stacks. */
Test(run_sarif, python_sockets_closed_by_the_collector_are_gc_closed_warnings)
{
	static const char gc_py[] =
		"import socket\n"
		"def get_user_data(i):\n"
		"    conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # line 3\n"
		"    return i  # conn dropped, never closed\n"
		"for i in range(4):\n"
		"    get_user_data(i)\n";
	if (access("/usr/bin/python3.11", X_OK) != 0)
		cr_skip_test("no /usr/bin/python3.11");
	char script[PATH_MAX + 16], ws[PATH_MAX + 32];
	snprintf(script, sizeof script, "%s/gc.py", tmp);
	FILE *f = fopen(script, "w");
	cr_assert_not_null(f);
	fputs(gc_py, f);
	fclose(f);
	snprintf(ws, sizeof ws, "GITHUB_WORKSPACE=%s", tmp);
	struct tj *d = run_sarif("py.sarif", (char *[]){ ws, NULL }, (const char *[]){ "--kind", "sockets", NULL },
				 (const char *[]){ "/usr/bin/python3.11", script, NULL }, 0);
	cr_assert_eq(tj_len(results(d)), 1, "one group of dropped sockets");
	struct tj *res = tj_at(results(d), 0);
	cr_expect_str_eq(tj_str(res, "ruleId"), "LW004");
	cr_expect_eq(tj_num(res, "ruleIndex", -1), 3);
	cr_expect_str_eq(tj_str(res, "level"), "warning");
	int line;
	cr_expect_str_eq(result_uri(res, &line), "gc.py");
	cr_expect_eq(line, 3);
	cr_expect_not_null(strstr(tj_str(tj_get(res, "message"), "text"), "4 sockets never closed by the program"));
	struct tj *stacks = tj_get(res, "stacks");
	cr_assert_eq(tj_len(stacks), 2);
	cr_expect_str_eq(tj_str(tj_get(tj_at(stacks, 0), "message"), "text"), "opened at");
	cr_expect_str_eq(tj_str(tj_get(tj_at(stacks, 1), "message"), "text"), "dropped at");
	tj_free(d);
}

/* ---- GitHub annotations ----------------------------------------------------------- */

/* Lines of s that start with "::". */
static int workflow_commands(const char *s)
{
	int n = 0;
	for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		n += strncmp(p, "::", 2) == 0;
	return n;
}

Test(run_sarif, github_annotations_one_per_leak_group)
{
	int leak_line = marker("tests/fixtures/leak_basic.c", "leak_basic.socket");
	struct cmd_result r;
	lw_run_timed(&r, (char *[]){ "GITHUB_ACTIONS=true", NULL }, (const char *[]){ "--kind", "sockets", NULL },
		     (const char *[]){ FIX("leak_basic"), "3", "1", NULL }, 120);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char want[256];
	snprintf(want, sizeof want,
		 "::error file=tests/fixtures/leak_basic.c,line=%d,title=leakwatch LW001 leaked-socket::3 sockets left open (TCP -> 127.0.0.1",
		 leak_line);
	cr_expect_not_null(strstr(r.out, want), "%s", r.out);
	cr_expect_eq(workflow_commands(r.out), 1, "%s", r.out);
	cr_expect_eq(strncmp(r.out, "leak_basic: leaked 3, closed 1\n", 31), 0, "the program's own output first: %s", r.out);
	cr_expect_eq(workflow_commands(r.err), 0, "%s", r.err);
	cmd_result_free(&r);

	/* not under GitHub Actions, or turned off: none */
	lw_run_timed(&r, (char *[]){ "GITHUB_ACTIONS=false", NULL }, (const char *[]){ "--kind", "sockets", NULL },
		     (const char *[]){ FIX("leak_basic"), "3", "1", NULL }, 120);
	cr_expect_eq(workflow_commands(r.out) + workflow_commands(r.err), 0, "%s%s", r.out, r.err);
	cmd_result_free(&r);
	lw_run_timed(&r, (char *[]){ "GITHUB_ACTIONS=true", NULL },
		     (const char *[]){ "--kind", "sockets", "--no-github-annotations", NULL },
		     (const char *[]){ FIX("leak_basic"), "3", "1", NULL }, 120);
	cr_expect_eq(workflow_commands(r.out) + workflow_commands(r.err), 0, "%s%s", r.out, r.err);
	cmd_result_free(&r);

	/* a JSON report on stdout stays JSON: the annotations go to stderr then */
	lw_run_timed(&r, (char *[]){ "GITHUB_ACTIONS=true", NULL },
		     (const char *[]){ "--kind", "sockets", "--format", "json", "--output", "-", NULL },
		     (const char *[]){ FIX("leak_basic"), "2", "0", NULL }, 120);
	cr_assert_eq(r.status, 0, "%s", r.err);
	struct tj *j = tj_parse(strchr(r.out, '{'));
	cr_expect_not_null(j, "stdout: %s", r.out);
	tj_free(j);
	cr_expect_eq(workflow_commands(r.err), 1, "%s", r.err);
	cmd_result_free(&r);

	/* outside the repository: no file=, the annotation is the job's */
	lw_run_timed(&r, (char *[]){ "GITHUB_ACTIONS=true", "GITHUB_WORKSPACE=/nonexistent-checkout", NULL },
		     (const char *[]){ "--kind", "sockets", NULL }, (const char *[]){ FIX("leak_basic"), "1", "0", NULL }, 120);
	cr_expect_not_null(strstr(r.out, "\n::error title=leakwatch LW001 leaked-socket::1 socket left open"), "%s", r.out);
	cmd_result_free(&r);
}

Test(run_sarif, github_annotations_escape_their_text)
{
	/* a directory named with '%', ',' and ':': in the message only '%' is special */
	char dir[PATH_MAX + 32];
	snprintf(dir, sizeof dir, "%s/50%%,a:b", tmp);
	cr_assert_eq(mkdir(dir, 0700), 0);
	struct cmd_result r;
	lw_run_timed(&r, (char *[]){ "GITHUB_ACTIONS=true", NULL }, (const char *[]){ "--kind", "fds", NULL },
		     (const char *[]){ FIX("fdkinds"), dir, "onefile", NULL }, 120);
	cr_assert_eq(r.status, 0, "%s", r.err);
	char want[PATH_MAX + 256];
	snprintf(want, sizeof want,
		 "::error file=tests/fixtures/fdkinds.c,line=%d,title=leakwatch LW002 leaked-descriptor::"
		 "1 file descriptor left open (%s/50%%25,a:b/one.txt), opened at main (tests/fixtures/fdkinds.c:%d)\n",
		 marker("tests/fixtures/fdkinds.c", "fdkinds.onefile"), tmp, marker("tests/fixtures/fdkinds.c", "fdkinds.onefile"));
	cr_expect_not_null(strstr(r.out, want), "want %s in:\n%s", want, r.out);
	cr_expect_eq(workflow_commands(r.out), 1, "%s", r.out);
	cmd_result_free(&r);

	/* the escapes themselves, as GitHub's toolkit writes them */
	char buf[128];
	cr_expect_str_eq(lw_github_escape_data("50%\r\nnext: a,b", buf, sizeof buf), "50%25%0D%0Anext: a,b");
	cr_expect_str_eq(lw_github_escape_property("dir: a,b%\n", buf, sizeof buf), "dir%3A a%2Cb%25%0A");
	/* cut whole: never half an escape */
	cr_expect_str_eq(lw_github_escape_property("ab:", buf, 5), "ab");
}

/* ---- paths ------------------------------------------------------------------------ */

Test(run_sarif, source_paths_resolve_against_the_compilation_directory)
{
	char out[PATH_MAX];
	struct lw_frame f = { .function = "f", .file = "src/../lib/./x.c", .comp_dir = "/repo/build", .line = 3 };
	cr_expect_eq(lw_ci_frame_path(&f, "/repo", out, sizeof out), 1);
	cr_expect_str_eq(out, "build/lib/x.c");
	f.file = "../src/y.c";
	cr_expect_eq(lw_ci_frame_path(&f, "/repo", out, sizeof out), 1);
	cr_expect_str_eq(out, "src/y.c");
	cr_expect_eq(lw_ci_frame_path(&f, "/repo/build", out, sizeof out), 0, "outside the base");
	cr_expect_str_eq(out, "/repo/src/y.c");
	f.file = "/repository/z.c";   /* a prefix that is no parent */
	cr_expect_eq(lw_ci_frame_path(&f, "/repo", out, sizeof out), 0);
	cr_expect_str_eq(out, "/repository/z.c");
	f.file = NULL;
	cr_expect_eq(lw_ci_frame_path(&f, "/repo", out, sizeof out), -1);
	/* a relative compilation directory names no place unless the file is here */
	struct lw_frame libc = { .function = "__libc_start_main", .file = "../csu/libc-start.c", .comp_dir = "./csu",
				 .line = 360 };
	cr_expect_eq(lw_ci_frame_path(&libc, "/repo", out, sizeof out), -2);
	cr_expect_str_eq(out, "../csu/libc-start.c", "as recorded");
	struct lw_frame here = { .function = "f", .file = "tests/fixtures/supp.c", .comp_dir = ".", .line = 1 };
	char cwd[PATH_MAX];
	cr_assert_not_null(getcwd(cwd, sizeof cwd));
	cr_assert_eq(chdir(LW_SOURCE_DIR), 0);
	cr_expect_eq(lw_ci_frame_path(&here, LW_SOURCE_DIR, out, sizeof out), 1);
	cr_expect_str_eq(out, "tests/fixtures/supp.c");
	cr_assert_eq(chdir(cwd), 0);

	/* the site: the first frame in the repository, past the C library's */
	struct lw_frame st[] = {
		{ .function = "memcpy", .file = "/usr/src/glibc/string.c", .line = 9, .module = "/lib/x86_64-linux-gnu/libc.so.6" },
		{ .function = "helper", .module = "/opt/lib/libfoo.so" },
		{ .function = "get_user_data", .file = "api.c", .comp_dir = "/repo/demo", .line = 88, .module = "/repo/demo/api" },
		{ .function = "main", .file = "api.c", .comp_dir = "/repo/demo", .line = 131, .module = "/repo/demo/api" },
	};
	struct lw_ci_site s;
	lw_ci_site(st, 4, "/repo", &s);
	cr_expect_eq(s.frame, 2);
	cr_expect_str_eq(s.path, "demo/api.c");
	cr_expect_eq(s.line, 88);
	cr_expect(s.in_base);
	/* nothing in the repository: the program's own code before the C library */
	lw_ci_site(st, 4, "/elsewhere", &s);
	cr_expect_eq(s.frame, 2);
	cr_expect_str_eq(s.path, "/repo/demo/api.c");
	cr_expect(!s.in_base);
	/* no source lines at all: the first named frame of its own */
	lw_ci_site(st, 2, "/repo", &s);
	cr_expect_eq(s.frame, 0, "a line, even in libc, beats none");
	st[0].line = 0;
	lw_ci_site(st, 2, "/repo", &s);
	cr_expect_eq(s.frame, 1);
	cr_expect_str_eq(s.function, "helper");
	cr_expect_str_eq(s.path, "");
}
