/*
 * modes.h - which lock modes may be held at once (Gray's granularity
 * locking), and what each mode asks of a lock's group word.
 *
 *          IS   IX   S    SIX  X
 *    IS    yes  yes  yes  yes  no
 *    IX    yes  yes  no   no   no
 *    S     yes  no   yes  no   no
 *    SIX   yes  no   no   no   no
 *    X     no   no   no   no   no
 *
 * X is held through the owner word; the others are counted in the group
 * word (layout.h): IS holders in a count of their own, and IX, S or SIX
 * holders in the "main" group, whose kind says which (IX and S exclude
 * each other; SIX excludes both and itself).
 */
#ifndef LOCKMGR_SHM_MODES_H
#define LOCKMGR_SHM_MODES_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

static inline const char *lm_mode_name(uint32_t mode)
{
	static const char *const names[LM_MODES] = {
		[LM_MODE_X_] = "X", [LM_MODE_S_] = "S", [LM_MODE_IS_] = "IS",
		[LM_MODE_IX_] = "IX", [LM_MODE_SIX_] = "SIX",
	};
	return mode < LM_MODES ? names[mode] : "?";
}

/* May a holder of mode a and one of mode b (different sessions) hold
 * the same lock at once? */
static inline bool lm_modes_compatible(uint32_t a, uint32_t b)
{
	/* Row: a; bit b set if compatible. */
	static const uint8_t compat[LM_MODES] = {
		[LM_MODE_X_] = 0,
		[LM_MODE_S_] = 1u << LM_MODE_S_ | 1u << LM_MODE_IS_,
		[LM_MODE_IS_] = 1u << LM_MODE_S_ | 1u << LM_MODE_IS_ |
				1u << LM_MODE_IX_ | 1u << LM_MODE_SIX_,
		[LM_MODE_IX_] = 1u << LM_MODE_IS_ | 1u << LM_MODE_IX_,
		[LM_MODE_SIX_] = 1u << LM_MODE_IS_,
	};
	return a < LM_MODES && b < LM_MODES && (compat[a] >> b & 1u) != 0;
}

/* The main group kind a counted mode joins, or 0 for IS. */
static inline uint32_t lm_mode_group(uint32_t mode)
{
	return mode == LM_MODE_IX_    ? LM_GROUP_IX
	       : mode == LM_MODE_S_   ? LM_GROUP_S
	       : mode == LM_MODE_SIX_ ? LM_GROUP_SIX
				      : 0;
}

/* May a holder of counted mode `mode` join group word w as it stands
 * (ignoring whether its lease runs)? */
static inline bool lm_group_admits(uint64_t w, uint32_t mode)
{
	if (mode == LM_MODE_IS_)
		return LM_GROUP_IS(w) < LM_GROUP_COUNT_MAX;
	uint32_t n = LM_GROUP_MAIN(w);
	if (n == 0)
		return true;
	if (mode == LM_MODE_SIX_ || LM_GROUP_KIND(w) == LM_GROUP_SIX)
		return false;
	return LM_GROUP_KIND(w) == lm_mode_group(mode) &&
	       n < LM_GROUP_COUNT_MAX;
}

/* w with one more member of counted mode `mode` (lm_group_admits). */
static inline uint64_t lm_group_plus(uint64_t w, uint32_t mode)
{
	uint32_t gen = LM_GROUP_GEN(w), kind = LM_GROUP_KIND(w),
		 main = LM_GROUP_MAIN(w), is = LM_GROUP_IS(w);
	if (mode == LM_MODE_IS_)
		return LM_GROUP_WORD(gen, kind, main, is + 1);
	if (main == 0)
		kind = lm_mode_group(mode);
	return LM_GROUP_WORD(gen, kind, main + 1, is);
}

/* w with one member of counted mode `mode` fewer, or w itself if it has
 * none (then the caller must not change it). */
static inline uint64_t lm_group_minus(uint64_t w, uint32_t mode)
{
	uint32_t gen = LM_GROUP_GEN(w), kind = LM_GROUP_KIND(w),
		 main = LM_GROUP_MAIN(w), is = LM_GROUP_IS(w);
	if (mode == LM_MODE_IS_)
		return is == 0 ? w : LM_GROUP_WORD(gen, kind, main, is - 1);
	if (main == 0 || kind != lm_mode_group(mode))
		return w;
	return LM_GROUP_WORD(gen, kind, main - 1, is);
}

/* An empty group of the next generation after w's. */
static inline uint64_t lm_group_reset(uint64_t w)
{
	return LM_GROUP_WORD(LM_GROUP_GEN(w) + 1u, 0, 0, 0);
}

#endif
