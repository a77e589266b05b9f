/*
 * scenarios.c - what the scenarios share: the order of primitives in a
 * round and the sweep of process counts.
 */
#include "scenarios.h"

const unsigned contended_p[CONTENDED_NP] = {1, 2, 4, 8, 16, 64};

int scen_order(unsigned mask, int round, enum prim_id out[PRIM_COUNT])
{
	enum prim_id all[PRIM_COUNT];
	int n = 0;
	for (int i = 0; i < PRIM_COUNT; i++)
		if (mask & (1u << i))
			all[n++] = (enum prim_id)i;
	for (int k = 0; k < n; k++)
		out[k] = all[(k + round) % n];
	return n;
}
