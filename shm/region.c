/*
 * region.c - create, attach and validate the shared region.
 *
 * Validation trusts nothing in the header: every size is compared with
 * what this build expects and with the object's real size from fstat, so
 * a foreign, truncated or corrupted object is refused before any of its
 * offsets is used.
 */
#include "region.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "status.h"

int lm_region_resolve_name(const char *name, char out[LM_REGION_NAME_MAX + 2])
{
	if (name != NULL && *name == '\0')
		return LM_R_BADREGION; /* "" given on purpose is a mistake */
	if (name == NULL)
		name = getenv("LOCKMGR_REGION");
	if (name == NULL || *name == '\0')
		name = LM_DEFAULT_REGION;
	const char *bare = name[0] == '/' ? name + 1 : name;
	size_t len = strlen(bare);
	if (len == 0 || len > LM_REGION_NAME_MAX)
		return LM_R_BADREGION;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)bare[i];
		if (ch == '/' || ch <= ' ' || ch == 0x7f)
			return LM_R_BADREGION;
	}
	if (strcmp(bare, ".") == 0 || strcmp(bare, "..") == 0)
		return LM_R_BADREGION;
	out[0] = '/';
	memcpy(out + 1, bare, len + 1);
	return 0;
}

static uint32_t bucket_count_for(uint32_t max_locks)
{
	/* Load factor at most 1/2 keeps linear probes short. */
	uint32_t n = 1;
	while (n < max_locks * 2u)
		n <<= 1;
	return n;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

struct layout_offsets {
	uint64_t sessions, buckets, names, servers, slots, total;
	uint32_t bucket_count;
};

static void compute_layout(uint32_t max_locks, uint32_t max_sessions,
			   struct layout_offsets *o)
{
	o->bucket_count = bucket_count_for(max_locks);
	o->sessions = align_up(sizeof(struct lm_region_header), LM_CACHELINE);
	o->buckets = align_up(o->sessions + (uint64_t)max_sessions *
				  sizeof(struct lm_session), LM_CACHELINE);
	o->names = align_up(o->buckets + (uint64_t)o->bucket_count *
					       sizeof(uint64_t),
			    LM_CACHELINE);
	o->servers = align_up(o->names + (uint64_t)max_locks *
				  sizeof(struct lm_name), 4096);
	o->slots = align_up(o->servers + LM_NSERVERS * sizeof(struct lm_server),
			    4096);
	o->total = align_up(o->slots + (uint64_t)max_locks * LM_NSERVERS *
					       sizeof(struct lm_slot),
			    4096);
}

size_t lm_region_size_for(uint32_t max_locks, uint32_t max_sessions)
{
	struct layout_offsets o;
	compute_layout(max_locks, max_sessions, &o);
	return (size_t)o.total;
}

int lm_region_check_params(const struct lm_region_params *p, char *err,
			   size_t errlen)
{
	if (p->max_locks < 1 || p->max_locks > LM_MAX_LOCKS_LIMIT) {
		snprintf(err, errlen, "--max-locks must be 1..%u",
			 LM_MAX_LOCKS_LIMIT);
		return LM_R_INVAL;
	}
	if (p->max_sessions < 1 || p->max_sessions > LM_MAX_SESSIONS_LIMIT) {
		snprintf(err, errlen, "--max-sessions must be 1..%u",
			 LM_MAX_SESSIONS_LIMIT);
		return LM_R_INVAL;
	}
	if (p->max_ttl_ms < 1 || p->max_ttl_ms > LM_MAX_TTL_LIMIT_MS) {
		snprintf(err, errlen,
			 "--max-ttl must be 1..86400000 ms (one day)");
		return LM_R_INVAL;
	}
	return 0;
}

static void set_views(struct lm_region *r, void *base, size_t size, int fd,
		      const char *name)
{
	struct lm_region_header *h = base;
	r->base = base;
	r->hdr = h;
	r->size = size;
	r->fd = fd;
	r->max_locks = h->max_locks;
	r->max_sessions = h->max_sessions;
	r->bucket_mask = h->bucket_count - 1;
	r->max_ttl_ms = h->max_ttl_ms;
	r->sessions = (struct lm_session *)((char *)base + h->off_sessions);
	r->buckets = (_Atomic uint64_t *)((char *)base + h->off_buckets);
	r->names = (struct lm_name *)((char *)base + h->off_names);
	for (unsigned i = 0; i < LM_NSERVERS; i++)
		r->servers[i] = (struct lm_server *)((char *)base +
						     h->off_servers) + i;
	r->slots = (struct lm_slot *)((char *)base + h->off_slots);
	snprintf(r->name, sizeof(r->name), "%s", name);
}

int lm_region_init(struct lm_region *r, int fd, const char *name,
		   const struct lm_region_params *p)
{
	struct layout_offsets o;
	compute_layout(p->max_locks, p->max_sessions, &o);
	if (ftruncate(fd, (off_t)o.total) != 0)
		return LM_R_SYS;
	void *base = mmap(NULL, o.total, PROT_READ | PROT_WRITE, MAP_SHARED,
			  fd, 0);
	if (base == MAP_FAILED)
		return LM_R_SYS;
	/* A fresh ftruncate'd object reads as zeroes; only the header and
	 * the non-zero initial values need writing. */
	struct lm_region_header *h = base;
	memset(h, 0, sizeof(*h));
	h->abi_version = LM_ABI_VERSION;
	h->header_size = sizeof(*h);
	h->region_size = o.total;
	h->max_locks = p->max_locks;
	h->max_sessions = p->max_sessions;
	h->bucket_count = o.bucket_count;
	h->nservers = LM_NSERVERS;
	h->session_size = sizeof(struct lm_session);
	h->name_size = sizeof(struct lm_name);
	h->slot_size = sizeof(struct lm_slot);
	h->server_size = sizeof(struct lm_server);
	h->off_sessions = o.sessions;
	h->off_buckets = o.buckets;
	h->off_names = o.names;
	h->off_servers = o.servers;
	h->off_slots = o.slots;
	h->max_ttl_ms = p->max_ttl_ms;
	atomic_store(&h->flags, p->tree ? LM_REGION_TREE : 0u);
	h->created_realtime_s = (int64_t)time(NULL);
	atomic_store(&h->restart_delay_ms, 100);
	set_views(r, base, o.total, fd, name);
	for (unsigned i = 0; i < LM_NSERVERS; i++) {
		struct lm_server *s = r->servers[i];
		atomic_store(&s->state, LM_SRV_WORD(0, LM_SRV_DOWN));
		atomic_store(&s->skew[0].rate_ppm, LM_RATE_ONE);
		atomic_store(&s->skew[1].rate_ppm, LM_RATE_ONE);
		atomic_store(&s->token_reserved, UINT64_MAX);
	}
	/* Pairs with the acquire load of magic in lm_region_validate. */
	atomic_store_explicit(&h->magic, LM_REGION_MAGIC, memory_order_release);
	return 0;
}

#define FAIL(...)                                                         \
	do {                                                              \
		snprintf(why, whylen, __VA_ARGS__);                       \
		return LM_R_INCOMPAT;                                      \
	} while (0)

int lm_region_validate(const void *base, size_t size, char *why,
		       size_t whylen)
{
	const struct lm_region_header *h = base;
	if (size < sizeof(*h))
		FAIL("object is %zu bytes, smaller than a lockmgr header "
		     "(truncated or foreign)", size);
	uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
	if (magic == 0)
		FAIL("region is not initialised (lockmgrd crashed while "
		     "creating it, or it is still starting)");
	if (magic != LM_REGION_MAGIC)
		FAIL("not a lockmgr region (magic %#llx)",
		     (unsigned long long)magic);
	if (h->abi_version != LM_ABI_VERSION)
		FAIL("region has layout version %u, this build speaks %u: "
		     "restart lockmgrd from the same build",
		     h->abi_version, LM_ABI_VERSION);
	if (h->header_size != sizeof(struct lm_region_header) ||
	    h->session_size != sizeof(struct lm_session) ||
	    h->name_size != sizeof(struct lm_name) ||
	    h->slot_size != sizeof(struct lm_slot) ||
	    h->server_size != sizeof(struct lm_server) ||
	    h->nservers != LM_NSERVERS)
		FAIL("region struct sizes differ from this build's (corrupted "
		     "or built differently)");
	if (h->max_locks < 1 || h->max_locks > LM_MAX_LOCKS_LIMIT ||
	    h->max_sessions < 1 || h->max_sessions > LM_MAX_SESSIONS_LIMIT)
		FAIL("region header has impossible sizes (corrupted)");
	if (h->max_ttl_ms < 1 || h->max_ttl_ms > LM_MAX_TTL_LIMIT_MS)
		FAIL("region header has an impossible max TTL (corrupted)");
	struct layout_offsets o;
	compute_layout(h->max_locks, h->max_sessions, &o);
	if (h->bucket_count != o.bucket_count ||
	    h->off_sessions != o.sessions || h->off_buckets != o.buckets ||
	    h->off_names != o.names || h->off_servers != o.servers ||
	    h->off_slots != o.slots || h->region_size != o.total)
		FAIL("region header offsets are inconsistent (corrupted)");
	if (size < o.total)
		FAIL("object is %zu bytes but its header says %llu "
		     "(truncated)", size, (unsigned long long)o.total);
	return 0;
}

int lm_region_map_fd(struct lm_region *r, int fd, const char *name,
		     char *why, size_t whylen)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return LM_R_SYS;
	size_t size = (size_t)st.st_size;
	if (size < sizeof(struct lm_region_header)) {
		snprintf(why, whylen,
			 "object is %zu bytes, smaller than a lockmgr header "
			 "(truncated or foreign)", size);
		return LM_R_INCOMPAT;
	}
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			  0);
	if (base == MAP_FAILED)
		return LM_R_SYS;
	int rc = lm_region_validate(base, size, why, whylen);
	if (rc != 0) {
		munmap(base, size);
		return rc;
	}
	set_views(r, base, size, fd, name);
	return 0;
}

int lm_region_attach(struct lm_region *r, const char *name, char *why,
		     size_t whylen)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		if (errno == ENOENT) {
			snprintf(why, whylen, "no region %s", name);
			return LM_R_NOSUPERVISOR;
		}
		return LM_R_SYS;
	}
	int rc = lm_region_map_fd(r, fd, name, why, whylen);
	if (rc != 0) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return rc;
}

void lm_region_detach(struct lm_region *r)
{
	if (r->base != NULL)
		munmap(r->base, r->size);
	if (r->fd >= 0)
		close(r->fd);
	r->base = NULL;
	r->hdr = NULL;
	r->fd = -1;
}
