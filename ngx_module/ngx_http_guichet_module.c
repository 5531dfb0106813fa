/*
 * ngx_http_guichet_module.c -- directives, configuration, process start
 * and exit (the Redis pool, then the catalogue's refresher), the
 * declaration of $guichet_family (computed in _metrics.c) and the shared
 * metrics zone.
 *
 * Every directive is documented once in docs/directives.md and appears in
 * lua-free-config/production.conf (scripts/lint.sh checks both).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "ngx_http_guichet.h"


static ngx_int_t ngx_http_guichet_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_guichet_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_guichet_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_guichet_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_guichet_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_guichet_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_guichet_town_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_guichet_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_guichet_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_guichet_redis_cluster(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_guichet_init_catalogues_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_int_t ngx_http_guichet_init_metrics_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_guichet_init_process(ngx_cycle_t *cycle);
static void ngx_http_guichet_exit_process(ngx_cycle_t *cycle);


ngx_http_guichet_worker_t  ngx_http_guichet_worker;


static ngx_command_t  ngx_http_guichet_commands[] = {

    { ngx_string("guichet_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, redis),
      NULL },

    { ngx_string("guichet_redis_password"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, redis_password),
      NULL },

    { ngx_string("guichet_redis_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, redis_pool),
      NULL },

    { ngx_string("guichet_redis_cluster"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_guichet_redis_cluster,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("guichet_redis_wait_replicas"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, wait_replicas),
      NULL },

    { ngx_string("guichet_redis_wait_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, wait_timeout),
      NULL },

    { ngx_string("guichet_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, timeout),
      NULL },

    { ngx_string("guichet_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, secret_file),
      NULL },

    { ngx_string("guichet_max_items"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, max_items),
      NULL },

    { ngx_string("guichet_idempotency_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, idempotency_ttl),
      NULL },

    { ngx_string("guichet_catalogue_refresh"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, catalogue_refresh),
      NULL },

    { ngx_string("guichet_full_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, full_cache),
      NULL },

    { ngx_string("guichet_budget_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, budget_zone_size),
      NULL },

    { ngx_string("guichet_token_cache_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, token_cache_size),
      NULL },

    { ngx_string("guichet_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, token_ttl),
      NULL },

    { ngx_string("guichet_password_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, thread_pool_name),
      NULL },

    { ngx_string("guichet_cookie_secure"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_guichet_main_conf_t, cookie_secure),
      NULL },

    { ngx_string("guichet_town"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_guichet_town_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_guichet_loc_conf_t, town),
      NULL },

    { ngx_string("guichet_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_guichet_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("guichet_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_guichet_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_guichet_module_ctx = {
    ngx_http_guichet_add_variables,        /* preconfiguration */
    ngx_http_guichet_postconfiguration,    /* postconfiguration */

    ngx_http_guichet_create_main_conf,     /* create main configuration */
    ngx_http_guichet_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_guichet_create_loc_conf,      /* create location configuration */
    ngx_http_guichet_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_guichet_module = {
    NGX_MODULE_V1,
    &ngx_http_guichet_module_ctx,          /* module context */
    ngx_http_guichet_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_guichet_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_guichet_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_guichet_family_name = ngx_string("guichet_family");
static ngx_str_t  ngx_http_guichet_town_name = ngx_string("guichet_town");
static ngx_str_t  ngx_http_guichet_cookie_var = ngx_string(
    "guichet_cookie_name");


/* $guichet_town: the location's guichet_town (for guichet-office) */
static ngx_int_t
ngx_http_guichet_town_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_guichet_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_guichet_module);

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = glcf->town.data;
    v->len = glcf->town.len;

    return NGX_OK;
}


/*
 * $guichet_cookie_name: the session cookie's name the module reads
 * (guichet_cookie_secure), for guichet-office's X-Guichet-Cookie
 */
static ngx_int_t
ngx_http_guichet_cookie_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  name;

    ngx_http_guichet_cookie_name(r, &name);

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = name.data;
    v->len = name.len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_guichet_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_guichet_family_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_guichet_family_variable;

    var = ngx_http_add_variable(cf, &ngx_http_guichet_town_name, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_guichet_town_variable;

    var = ngx_http_add_variable(cf, &ngx_http_guichet_cookie_var, 0);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_guichet_cookie_variable;

    return NGX_OK;
}


static void *
ngx_http_guichet_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_guichet_main_conf_t));
    if (gmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     gmcf->redis = { 0, NULL };
     *     gmcf->redis_password = { 0, NULL };
     *     gmcf->redis_cluster = NULL;
     *     gmcf->secret_file = { 0, NULL };
     *     gmcf->thread_pool_name = { 0, NULL };
     */

    gmcf->redis_pool = NGX_CONF_UNSET_UINT;
    gmcf->wait_replicas = NGX_CONF_UNSET_UINT;
    gmcf->wait_timeout = NGX_CONF_UNSET_MSEC;
    gmcf->timeout = NGX_CONF_UNSET_MSEC;
    gmcf->max_items = NGX_CONF_UNSET_UINT;
    gmcf->idempotency_ttl = NGX_CONF_UNSET;
    gmcf->catalogue_refresh = NGX_CONF_UNSET_MSEC;
    gmcf->full_cache = NGX_CONF_UNSET_MSEC;
    gmcf->budget_zone_size = NGX_CONF_UNSET_SIZE;
    gmcf->token_cache_size = NGX_CONF_UNSET_SIZE;
    gmcf->token_ttl = NGX_CONF_UNSET;
    gmcf->cookie_secure = NGX_CONF_UNSET;

    return gmcf;
}


static ngx_int_t
ngx_http_guichet_hexval(u_char c)
{
    c = ngx_tolower(c);

    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* 32 raw bytes, or 64 hex digits with an optional trailing newline. */
static char *
ngx_http_guichet_read_secret(ngx_conf_t *cf,
    ngx_http_guichet_main_conf_t *gmcf)
{
    u_char           buf[128];
    ssize_t          n;
    ngx_int_t        hi, lo;
    ngx_uint_t       i;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, &gmcf->secret_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = gmcf->secret_file;
    file.log = cf->log;

    file.fd = ngx_open_file(file.name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                            0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &file.name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR || !ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "guichet secret file \"%V\" is not a regular "
                           "file", &file.name);
        ngx_close_file(file.fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_file(&file, buf, sizeof(buf), 0);
    ngx_close_file(file.fd);

    if (n == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    if (n == GCH_SECRET_LEN) {
        ngx_memcpy(gmcf->secret, buf, GCH_SECRET_LEN);
        gmcf->have_secret = 1;
        return NGX_CONF_OK;
    }

    if (n == 2 * GCH_SECRET_LEN) {
        for (i = 0; i < GCH_SECRET_LEN; i++) {
            hi = ngx_http_guichet_hexval(buf[2 * i]);
            lo = ngx_http_guichet_hexval(buf[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                break;
            }
            gmcf->secret[i] = (u_char) (hi * 16 + lo);
        }

        if (i == GCH_SECRET_LEN) {
            gmcf->have_secret = 1;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "guichet secret file \"%V\" must hold 32 bytes "
                       "or 64 hex digits", &file.name);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_guichet_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_guichet_main_conf_t *gmcf = conf;

    ngx_conf_init_uint_value(gmcf->redis_pool, 2);
    ngx_conf_init_msec_value(gmcf->timeout, 2000);
    ngx_conf_init_uint_value(gmcf->max_items, 400);
    ngx_conf_init_value(gmcf->idempotency_ttl, 86400);
    ngx_conf_init_msec_value(gmcf->catalogue_refresh, 1000);
    ngx_conf_init_msec_value(gmcf->full_cache, 200);
    ngx_conf_init_size_value(gmcf->budget_zone_size, 8 * 1024 * 1024);
    ngx_conf_init_size_value(gmcf->token_cache_size, 64 * 1024 * 1024);
    ngx_conf_init_value(gmcf->token_ttl, 12 * 3600);
    ngx_conf_init_value(gmcf->cookie_secure, 1);
    /* one replica must hold a confirmed booking in cluster mode */
    ngx_conf_init_uint_value(gmcf->wait_replicas,
                             gmcf->redis_cluster ? 1 : 0);
    ngx_conf_init_msec_value(gmcf->wait_timeout, 500);

    if (gmcf->redis.len && gmcf->redis_cluster) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guichet_redis\" and \"guichet_redis_cluster\" "
                           "exclude each other: one Redis, or a cluster");
        return NGX_CONF_ERROR;
    }

    if (gmcf->redis.len == 0) {
        ngx_str_set(&gmcf->redis, "127.0.0.1:6379");
    }

    if (gmcf->thread_pool_name.len == 0) {
        ngx_str_set(&gmcf->thread_pool_name, "default");
    }

    if (gmcf->budget_zone_size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guichet_budget_zone\" is too small: at least "
                           "%uz", 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    if (gmcf->token_cache_size != 0
        && gmcf->token_cache_size < 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guichet_token_cache_size\" must be 0 (no "
                           "cache) or at least 1m");
        return NGX_CONF_ERROR;
    }

    if (gmcf->redis_pool == 0 || gmcf->redis_pool > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guichet_redis_pool\" must be between 1 and 64");
        return NGX_CONF_ERROR;
    }

    if (gmcf->wait_replicas > 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guichet_redis_wait_replicas\" must be "
                           "between 0 and 16");
        return NGX_CONF_ERROR;
    }

    if (gmcf->wait_replicas && gmcf->wait_timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guichet_redis_wait_timeout\" must be more "
                           "than 0 (WAIT 0 would wait forever)");
        return NGX_CONF_ERROR;
    }

    if (gmcf->max_items == 0 || gmcf->max_items > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guichet_max_items\" must be between 1 and 1000");
        return NGX_CONF_ERROR;
    }

    if (gmcf->catalogue_refresh < 50) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"guichet_catalogue_refresh\" must be 50ms "
                           "or more");
        return NGX_CONF_ERROR;
    }

    if (gmcf->secret_file.len) {
        if (ngx_http_guichet_read_secret(cf, gmcf) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_guichet_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_guichet_loc_conf_t  *glcf;

    glcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_guichet_loc_conf_t));
    if (glcf == NULL) {
        return NULL;
    }

    glcf->api = NGX_CONF_UNSET;
    glcf->metrics = NGX_CONF_UNSET;

    return glcf;
}


static char *
ngx_http_guichet_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_guichet_loc_conf_t *prev = parent;
    ngx_http_guichet_loc_conf_t *conf = child;

    ngx_str_t                     *ids;
    ngx_uint_t                     i;
    ngx_http_guichet_main_conf_t  *gmcf;

    ngx_conf_merge_value(conf->api, prev->api, 0);
    ngx_conf_merge_value(conf->metrics, prev->metrics, 0);
    ngx_conf_merge_str_value(conf->town, prev->town, GCH_TOWN_DEFAULT);

    if (!conf->api && !conf->metrics) {
        conf->town_index = NGX_CONF_UNSET_UINT;    /* serves no town */
        return NGX_CONF_OK;
    }

    /* a location that serves a town: its town gets a state per worker */

    gmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_guichet_module);

    if (gmcf->towns == NULL) {
        gmcf->towns = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (gmcf->towns == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ids = gmcf->towns->elts;

    for (i = 0; i < gmcf->towns->nelts; i++) {
        if (ids[i].len == conf->town.len
            && ngx_strncmp(ids[i].data, conf->town.data, conf->town.len) == 0)
        {
            break;
        }
    }

    if (i == gmcf->towns->nelts) {
        ids = ngx_array_push(gmcf->towns);
        if (ids == NULL) {
            return NGX_CONF_ERROR;
        }

        /* NUL-terminated: the keys are formatted with %s */
        ids->len = conf->town.len;
        ids->data = ngx_pnalloc(cf->pool, conf->town.len + 1);
        if (ids->data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(ids->data, conf->town.data, conf->town.len);
        ids->data[conf->town.len] = '\0';
    }

    conf->town_index = i;

    return NGX_CONF_OK;
}


/* guichet_town <id>: the town (its catalogue, its keys) a block serves */
static char *
ngx_http_guichet_town_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char       *rv;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (!gch_town_id_ok((const char *) value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid town id \"%V\": 1 to %d characters "
                           "among a-z, 0-9 and \"-\"", &value[1],
                           GCH_TOWN_ID_MAX);
        return NGX_CONF_ERROR;
    }

    rv = ngx_conf_set_str_slot(cf, cmd, conf);

    return rv;
}


static char *
ngx_http_guichet_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_guichet_loc_conf_t *glcf = conf;

    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_guichet_main_conf_t  *gmcf;

    if (glcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    glcf->api = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_guichet_api_handler;

    gmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_guichet_module);

    if (gmcf->thread_pool == NULL) {
        if (gmcf->thread_pool_name.len == 0) {
            ngx_str_set(&gmcf->thread_pool_name, "default");
        }

        gmcf->thread_pool = ngx_thread_pool_add(cf, &gmcf->thread_pool_name);
        if (gmcf->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_guichet_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_guichet_loc_conf_t *glcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (glcf->metrics != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    glcf->metrics = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_guichet_metrics_handler;

    return NGX_CONF_OK;
}


/* guichet_redis_cluster host:port ...: the seed nodes, in cluster mode */
static char *
ngx_http_guichet_redis_cluster(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_guichet_main_conf_t *gmcf = conf;

    u_char      *colon;
    ngx_str_t   *value, *seed;
    ngx_uint_t   i;

    if (gmcf->redis_cluster) {
        return "is duplicate";
    }

    value = cf->args->elts;

    gmcf->redis_cluster = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                           sizeof(ngx_str_t));
    if (gmcf->redis_cluster == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        colon = ngx_strlchr(value[i].data, value[i].data + value[i].len,
                            ':');
        if (colon == NULL || colon == value[i].data
            || ngx_atoi(colon + 1, value[i].data + value[i].len - colon - 1)
               <= 0
            || ngx_strlchr(colon + 1, value[i].data + value[i].len, ':'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"guichet_redis_cluster\": \"%V\" is not "
                               "host:port", &value[i]);
            return NGX_CONF_ERROR;
        }

        seed = ngx_array_push(gmcf->redis_cluster);
        if (seed == NULL) {
            return NGX_CONF_ERROR;
        }

        *seed = value[i];
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_guichet_postconfiguration(ngx_conf_t *cf)
{
    size_t                         size;
    ngx_str_t                      name;
    ngx_http_guichet_main_conf_t  *gmcf;

    gmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_guichet_module);

    ngx_str_set(&name, "guichet_metrics");

    gmcf->metrics_zone = ngx_shared_memory_add(cf, &name, 64 * 1024,
                                               &ngx_http_guichet_module);
    if (gmcf->metrics_zone == NULL) {
        return NGX_ERROR;
    }

    gmcf->metrics_zone->init = ngx_http_guichet_init_metrics_zone;

    /* two generations and a pid per town and worker slot, and each
       worker's token cache bytes, anew each load */
    ngx_str_set(&name, "guichet_catalogues");

    size = ngx_http_guichet_held_size(gmcf);

    gmcf->catalogues_zone = ngx_shared_memory_add(cf, &name,
                                                  8 * ngx_pagesize + 2 * size,
                                                  &ngx_http_guichet_module);
    if (gmcf->catalogues_zone == NULL) {
        return NGX_ERROR;
    }

    gmcf->catalogues_zone->noreuse = 1;
    gmcf->catalogues_zone->data = gmcf;     /* for its init, then the array */
    gmcf->catalogues_zone->init = ngx_http_guichet_init_catalogues_zone;

    if (ngx_http_guichet_budget_zone_add(cf, gmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (gmcf->thread_pool_name.len && gmcf->thread_pool == NULL) {
        gmcf->thread_pool = ngx_thread_pool_add(cf, &gmcf->thread_pool_name);
        if (gmcf->thread_pool == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* Counters survive reloads: an existing zone keeps its data. */
static ngx_int_t
ngx_http_guichet_init_metrics_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;
    void             *m;

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    m = ngx_slab_calloc(shpool, NGX_HTTP_GUICHET_METRICS_SLOTS
                                * NGX_HTTP_GUICHET_METRICS_SLOT);
    if (m == NULL) {
        return NGX_ERROR;
    }

    shpool->data = m;
    shm_zone->data = m;

    return NGX_OK;
}


/*
 * The workers' catalogue and revoked set generations and token cache
 * bytes: zeros (none yet), the size of this configuration's towns
 * (shm_zone->noreuse: never an old zone's).
 */
static ngx_int_t
ngx_http_guichet_init_catalogues_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t                         size;
    ngx_slab_pool_t               *shpool;
    ngx_http_guichet_main_conf_t  *gmcf;
    void                          *gens;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    gmcf = shm_zone->data;

    size = ngx_http_guichet_held_size(gmcf);

    gens = ngx_slab_calloc(shpool, size);
    if (gens == NULL) {
        return NGX_ERROR;
    }

    shpool->data = gens;
    shm_zone->data = gens;

    return NGX_OK;
}


static ngx_int_t
ngx_http_guichet_init_process(ngx_cycle_t *cycle)
{
    ngx_http_conf_ctx_t            *ctx;
    ngx_http_guichet_redis_conf_t   rcf;
    ngx_http_guichet_main_conf_t   *gmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    ctx = (ngx_http_conf_ctx_t *) cycle->conf_ctx[ngx_http_module.index];
    if (ctx == NULL) {
        return NGX_OK;
    }

    gmcf = ctx->main_conf[ngx_http_guichet_module.ctx_index];

    if (sodium_init() < 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "sodium_init() failed");
        return NGX_ERROR;
    }

    ngx_memzero(&ngx_http_guichet_worker, sizeof(ngx_http_guichet_worker_t));
    ngx_http_guichet_worker.gmcf = gmcf;
    ngx_http_guichet_worker.log = cycle->log;
    /* this worker's slot of the counters */
    ngx_http_guichet_worker.metrics = (ngx_http_guichet_metrics_t *)
        ((u_char *) gmcf->metrics_zone->data
         + (ngx_worker % NGX_HTTP_GUICHET_METRICS_SLOTS)
           * NGX_HTTP_GUICHET_METRICS_SLOT);
    ngx_http_guichet_tokc_init();

    ngx_memzero(&rcf, sizeof(ngx_http_guichet_redis_conf_t));
    rcf.address = gmcf->redis;
    rcf.password = gmcf->redis_password;
    rcf.pool = gmcf->redis_pool;
    rcf.cluster = gmcf->redis_cluster;
    rcf.sent = ngx_http_guichet_metrics_redis_sent;
    rcf.replied = ngx_http_guichet_metrics_redis_replied;
    rcf.reconnecting = ngx_http_guichet_metrics_redis_reconnecting;
    rcf.redirected = ngx_http_guichet_metrics_redis_redirected;

    if (ngx_http_guichet_redis_init(cycle, &rcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_guichet_catalogue_init(cycle);
}


static void
ngx_http_guichet_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_guichet_redis_exit(cycle);
    ngx_http_guichet_catalogue_exit(cycle);
    ngx_http_guichet_tokc_exit();
}
