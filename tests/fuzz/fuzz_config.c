/*
 * libFuzzer target for the config parser with wfvaultd's keyword table:
 * any bytes must give either a config within every documented limit or a
 * one-line "name:..." error, and never leak or crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "wfvaultd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_NAME	"fuzz.conf"

static void
fz_check(int cond)
{
	if (!cond)
		abort();
}

/* The number helpers on the same bytes, NUL-terminated. */
static void
fz_numbers(const uint8_t *data, size_t size)
{
	char		*s, err[256];
	uint64_t	 v;

	if ((s = malloc(size + 1)) == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (conf_parse_uint(s, 1, 65536, &v, err, sizeof(err)) == 0)
		fz_check(v >= 1 && v <= 65536);
	if (conf_parse_size(s, 1024, (uint64_t)1 << 40, &v, err,
	    sizeof(err)) == 0)
		fz_check(v >= 1024 && v <= (uint64_t)1 << 40);
	if (conf_parse_duration(s, 0, UINT64_MAX, &v, err, sizeof(err)) == -1)
		fz_check(err[0] != '\0');
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon_conf	 dc;
	char			 err[1024];

	if (size < 64)
		fz_numbers(data, size);

	err[0] = '\0';
	if (daemon_conf_load_buffer(FZ_NAME, (const char *)data, size, &dc,
	    err, sizeof(err)) == -1) {
		fz_check(strncmp(err, FZ_NAME, strlen(FZ_NAME)) == 0);
		fz_check(err[strlen(FZ_NAME)] == ':');
		fz_check(strchr(err, '\n') == NULL);
		fz_check(dc.dc_socket == NULL && dc.dc_acl.acl_rules == NULL);
		return 0;
	}
	fz_check(dc.dc_socket != NULL && dc.dc_socket[0] == '/');
	fz_check(strlen(dc.dc_socket) < 108);
	fz_check(dc.dc_data_dir != NULL && dc.dc_data_dir[0] == '/');
	fz_check((dc.dc_master_key_file == NULL) !=
	    (dc.dc_master_key_credential == NULL));
	fz_check(dc.dc_socket_mode <= 0777);
	fz_check(dc.dc_map_size >= ((uint64_t)1 << 20) &&
	    dc.dc_map_size <= ((uint64_t)1 << 40));
	fz_check(dc.dc_max_connections >= 1 &&
	    dc.dc_max_connections <= 65536);
	fz_check(dc.dc_max_config_bytes < dc.dc_max_message_bytes);
	fz_check(dc.dc_max_config_bytes < dc.dc_max_output_bytes);
	fz_check(dc.dc_idle_timeout >= 1 && dc.dc_idle_timeout <= 86400);
	fz_check(dc.dc_message_timeout >= 1 && dc.dc_message_timeout <= 3600);
	fz_check(dc.dc_keep_versions >= 1 && dc.dc_keep_versions <= 1000);
	fz_check(dc.dc_audit_log == NULL || dc.dc_audit_log[0] == '/');
	daemon_conf_release(&dc);
	return 0;
}
