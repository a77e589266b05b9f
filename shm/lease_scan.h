/*
 * lease_scan.h - how long the leases on a table can still run (what a
 * restarted server's quarantine and `lockctl server kill` are bounded by).
 */
#ifndef LOCKMGR_SHM_LEASE_SCAN_H
#define LOCKMGR_SHM_LEASE_SCAN_H

#include <stdint.h>

#include "region.h"

/*
 * The latest local time (ns) at which a lease on table `table` ends,
 * among the grants made in lives of its server other than skip_epoch
 * (UINT64_MAX: all of them); now_ns if none is running.
 */
int64_t lm_leases_end_ns(const struct lm_region *r, unsigned table,
			 uint64_t skip_epoch, int64_t now_ns);

#endif
