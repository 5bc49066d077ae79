/*
 * Helpers several unit tests share: temporary directories, a store in one
 * (the LMDB fixture), and the walk over an example config's commented-out
 * lines.  Linked into every unit test binary.
 */
#ifndef WFVAULT_TEST_SUPPORT_H
#define WFVAULT_TEST_SUPPORT_H

#include <stddef.h>

#include "wfvaultd.h"

/*
 * Makes a new directory $TMPDIR/wfvault-<tag>-XXXXXX (/tmp without
 * TMPDIR) and writes its path into buf.  Returns 0, or -1 with buf "".
 */
int	test_tmpdir(char *buf, size_t len, const char *tag);
/* Removes path and everything below it. */
void	test_rmtree(const char *path);

#define TEST_STORE_MAP_SIZE	(16ULL * 1024 * 1024)
#define TEST_STORE_KEEP		3

/* An open store with a random master key, in a temporary directory. */
struct test_store {
	char			 ts_tmp[1024];	/* the temporary directory */
	char			 ts_dir[1040];	/* data_dir, below it */
	unsigned char		*ts_mk;
	struct store_params	 ts_params;
	struct store		*ts_store;
};

/*
 * cmocka setup and teardown: *state becomes a new struct test_store (the
 * teardown closes the store and removes the directory).
 */
int	test_store_setup(void **state);
int	test_store_teardown(void **state);
/*
 * Closes and reopens the store with mk (the fixture's key when NULL).
 * Returns store_open's code, its message in err.
 */
int	test_store_reopen(struct test_store *, const unsigned char *mk,
	    char *err, size_t errlen);
/*
 * Reads tenant's config at version (0: current) and compares its compact,
 * sorted serialisation with want (when want is not NULL).  Returns
 * store_config_get's code; *got_version when not NULL.
 */
int	test_store_get(struct test_store *, const char *tenant,
	    uint64_t version, const char *want, uint64_t *got_version);
/*
 * The versions database's key of tenant at version into buf (the id, a
 * NUL, 8 bytes big-endian): returns its length.
 */
size_t	test_store_vkey(const char *tenant, uint64_t version,
	    unsigned char *buf);
/*
 * Closes the store and opens its files directly in a write transaction,
 * as someone holding them would; test_store_raw_close commits, closes
 * and reopens the store.
 */
void	test_store_raw_open(struct test_store *, MDB_env **, MDB_txn **);
void	test_store_raw_close(struct test_store *, MDB_env *, MDB_txn *);

/*
 * rel inside the source tree: $WFVAULT_SRCDIR if set, else found from
 * this file's path as the compiler saw it (relative to the top directory
 * when built by the Makefile, which runs the tests from there).
 */
void	test_source_path(const char *rel, char *buf, size_t len);
/*
 * Calls check(line, arg) for each commented-out "#keyword<TAB>value" line
 * of the example config at path (line with its '#' and newline), and
 * returns how many there were.
 */
size_t	test_example_lines(const char *path,
	    void (*check)(const char *line, void *arg), void *arg);

#endif /* WFVAULT_TEST_SUPPORT_H */
