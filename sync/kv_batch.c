/*
 * What goes into a bulk KV request: the serialised items, how many fit
 * one request, and the batch limit that adapts to how KV copes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto.h"
#include "sync.h"

/* Batching. */

/* The split over n sizes found at base + i * stride + off. */
static size_t
kv_split_core(const void *base, size_t stride, size_t off, size_t n,
    size_t max_items, size_t max_bytes)
{
	const char	*p = base;
	size_t		 k, bytes = 2, sz, add;

	if (max_bytes < 2)
		return 0;
	for (k = 0; k < n && k < max_items; k++) {
		memcpy(&sz, p + k * stride + off, sizeof(sz));
		if (sz > max_bytes)
			break;
		add = sz + (k > 0 ? 1 : 0);
		if (add > max_bytes - bytes)
			break;
		bytes += add;
	}
	return k;
}

size_t
kv_batch_split(const size_t *sizes, size_t n, size_t max_items,
    size_t max_bytes)
{
	return kv_split_core(sizes, sizeof(*sizes), 0, n, max_items,
	    max_bytes);
}

size_t
kv_batch_bytes(const size_t *sizes, size_t n)
{
	size_t	i, bytes = 2;

	for (i = 0; i < n; i++)
		bytes += sizes[i] + (i > 0 ? 1 : 0);
	return bytes;
}

void
kv_limit_init(struct kv_limit *kl, size_t max_items)
{
	kl->kl_max = max_items > 0 ? max_items : 1;
	kl->kl_items = kl->kl_max;
	kl->kl_streak = 0;
}

void
kv_limit_update(struct kv_limit *kl, enum kv_limit_event ev, size_t sent)
{
	size_t	base, half;

	/* Halve what was actually sent: it may be under the limit. */
	base = sent > 0 && sent < kl->kl_items ? sent : kl->kl_items;
	half = base / 2;
	switch (ev) {
	case KV_LIMIT_OK:
		if (++kl->kl_streak < KV_GROW_AFTER)
			return;
		kl->kl_streak = 0;
		kl->kl_items = kl->kl_items > kl->kl_max / 2 ? kl->kl_max :
		    kl->kl_items * 2;
		return;
	case KV_LIMIT_TOO_LARGE:
		kl->kl_items = half < 1 ? 1 : half;
		break;
	case KV_LIMIT_SLOW:
		/* Smaller, but never below the floor by this alone. */
		if (half < KV_SLOW_MIN_ITEMS)
			half = KV_SLOW_MIN_ITEMS;
		if (half < kl->kl_items)
			kl->kl_items = half;
		break;
	case KV_LIMIT_FAILED:
		break;
	}
	kl->kl_streak = 0;
}

size_t
kv_items_split(const struct kv_items *kis, size_t max_items,
    size_t max_bytes)
{
	return kv_split_core(kis->kis_v, sizeof(*kis->kis_v),
	    offsetof(struct kv_item, ki_len), kis->kis_n, max_items,
	    max_bytes);
}

/* Items. */

static int
kv_items_push(struct kv_items *kis, const char *key, char *json,
    uint64_t version)
{
	struct kv_item	*nv;
	size_t		 ncap;
	char		*k;

	if (kis->kis_n == kis->kis_cap) {
		ncap = kis->kis_cap == 0 ? 64 : kis->kis_cap * 2;
		if ((nv = reallocarray(kis->kis_v, ncap, sizeof(*nv))) == NULL)
			return -1;
		kis->kis_v = nv;
		kis->kis_cap = ncap;
	}
	if ((k = strdup(key)) == NULL)
		return -1;
	kis->kis_v[kis->kis_n].ki_key = k;
	kis->kis_v[kis->kis_n].ki_json = json;
	kis->kis_v[kis->kis_n].ki_len = strlen(json);
	kis->kis_v[kis->kis_n].ki_version = version;
	kis->kis_v[kis->kis_n].ki_uncertain = 0;
	kis->kis_bytes += kis->kis_v[kis->kis_n].ki_len;
	kis->kis_n++;
	return 0;
}

int
kv_items_add_put(struct kv_items *kis, const char *key, json_t *config,
    uint64_t version, const char *kid)
{
	json_t	*item;
	char	*value, *json;

	if (!json_is_object(config) || version > INT64_MAX)
		return -1;
	/* Sorted keys: the same config always makes the same value. */
	if ((value = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL)
		return -1;
	/* The mark says the key is ours: only marked keys are pruned. */
	item = json_pack("{s:s,s:s,s:{s:I,s:i}}", "key", key, "value", value,
	    "metadata", "version", (json_int_t)version, KV_MARK_NAME,
	    KV_MARK_VALUE);
	proto_wipe_free(value);
	if (item == NULL)
		return -1;
	/* A listing then shows which values a rotation must seal again. */
	if (kid != NULL && json_object_set_new(json_object_get(item,
	    "metadata"), "kid", json_string(kid)) == -1) {
		json_decref(item);
		return -1;
	}
	json = json_dumps(item, JSON_COMPACT);
	json_decref(item);
	if (json == NULL)
		return -1;
	if (kv_items_push(kis, key, json, version) == -1) {
		proto_wipe_free(json);
		return -1;
	}
	return 0;
}

int
kv_items_add_delete(struct kv_items *kis, const char *key)
{
	json_t	*s;
	char	*json;

	if ((s = json_string(key)) == NULL)
		return -1;
	json = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(s);
	if (json == NULL)
		return -1;
	if (kv_items_push(kis, key, json, 0) == -1) {
		proto_wipe_free(json);
		return -1;
	}
	return 0;
}

void
kv_items_drop(struct kv_items *kis, size_t n)
{
	size_t	i;

	if (n > kis->kis_n)
		n = kis->kis_n;
	for (i = 0; i < n; i++) {
		kis->kis_bytes -= kis->kis_v[i].ki_len;
		proto_wipe_free(kis->kis_v[i].ki_json);
		free(kis->kis_v[i].ki_key);
	}
	if (kis->kis_n > n)
		memmove(kis->kis_v, kis->kis_v + n, (kis->kis_n - n) *
		    sizeof(*kis->kis_v));
	kis->kis_n -= n;
}

void
kv_items_release(struct kv_items *kis)
{
	kv_items_drop(kis, kis->kis_n);
	free(kis->kis_v);
	kis->kis_v = NULL;
	kis->kis_n = kis->kis_cap = kis->kis_bytes = 0;
}
