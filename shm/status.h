/*
 * status.h - what the region and the protocol on its tables return.
 *
 * The region does not know liblockmgr's public header; it returns these,
 * and the library hands them to its callers unchanged: each has the value
 * of the public LM_E* code of the same meaning (client/errors.c checks
 * every pair at compile time), so no call pays for a translation.
 */
#ifndef LOCKMGR_SHM_STATUS_H
#define LOCKMGR_SHM_STATUS_H

enum lm_status {
	LM_R_OK           = 0,
	LM_R_BUSY         = -1001, /* held by another session */
	LM_R_TIMEDOUT     = -1002, /* the wait ended before a grant */
	LM_R_NOQUORUM     = -1003, /* fewer than a majority usable */
	LM_R_LEASELOST    = -1004, /* lease expired or taken over */
	LM_R_NOTHELD      = -1005, /* released already / no such name */
	LM_R_BADNAME      = -1006, /* not a lock name */
	LM_R_BADTTL       = -1007, /* TTL out of range */
	LM_R_TABLEFULL    = -1008, /* no free name slot */
	LM_R_NOSUPERVISOR = -1009, /* no region */
	LM_R_INCOMPAT     = -1010, /* foreign, corrupted or other ABI */
	LM_R_SESSIONS     = -1011, /* no free session slot */
	LM_R_INVAL        = -1012, /* bad argument */
	LM_R_SYS          = -1013, /* a system call failed (errno) */
	LM_R_BADREGION    = -1014, /* not a region name */
	LM_R_OTHERNS      = -1015, /* another pid/time namespace */
	LM_R_DEADLOCK     = -1016, /* chosen to end a cycle of waits */
	LM_R_KIND         = -1017, /* used as another kind of lock */
	LM_R_PINS         = -1018, /* too many names pinned */
	LM_R_NOLEADER     = -1019, /* nobody leads the election */
	LM_R_NOTSUP       = -1020, /* not supported by this backend */
};

#endif
