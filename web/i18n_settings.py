"""Chinese descriptions of the instance's settings, by setting name (the
administration page shows ``sandbox.settings.SETTINGS``' English help otherwise).
``tests/web/test_chinese_pages.py`` checks that every setting has one."""

from __future__ import annotations

SETTINGS_ZH: dict[str, str] = {
    "home": "实例主目录；实例写入的所有内容都在其中。",
    "database_url": "元数据库的 SQLAlchemy 地址；留空表示使用主目录中的 SQLite（WAL 模式）。",
    "signing_key_file": "Ed25519 私钥（PEM）；留空表示由 init 创建的 <home>/keys/signing.pem。",
    "master_key_file": "静态加密的主密钥（32 字节原始数据）；留空表示 <home>/keys/master.key。",
    "workers": "查询工作进程的数量。",
    "worker_memory_mb": "每个查询的 DuckDB 内存上限（MiB）。",
    "worker_threads": "每个查询的 DuckDB 线程数。",
    "worker_address_space_mb": "每个工作进程的地址空间上限（RLIMIT_AS，MiB）。",
    "worker_cpu_seconds": "工作进程中每个查询的 CPU 时间上限（秒）。",
    "worker_temp_root": "工作进程存放解密版本的位置（权限 0700）；留空表示系统临时目录。指向 tmpfs 可使其不落盘。",
    "query_timeout_s": "每个查询的实际运行时间上限；超时即终止工作进程。",
    "min_response_ms": "查询的最短响应时间：每次运行都在响应时间网格 min_response_ms · response_grid_ratio^k 上"
                       "不早于其自身耗时的第一个点返回。",
    "response_grid_ratio": "响应时间网格相邻两点之间的比值（大于 1）；0 表示只保留下限 min_response_ms。",
    "max_fan_out": "私有表的一行最多可连接的公开表行数；计划可能超过此数的查询会被拒绝（query_too_costly）。",
    "max_concurrent_runs": "每个运营者可同时运行的查询数；超出的会被拒绝（too_many_runs）。",
    "min_epsilon_per_query": "未声明下限的策略所用的单次查询 ε 默认下限；更小的请求会被拒绝（epsilon_below_floor）。",
    "debug_engine_messages": "不安全：在工作进程日志中保留 DuckDB 的原始错误信息（可能引用数据值）。生产环境中应关闭。",
    "log_max_bytes": "实例每个日志文件轮转时的大小（字节）。",
    "log_backups": "每个日志保留的轮转文件数。",
    "default_epsilon": "未指定 ε 的查询所消耗的 ε（不超过单次查询上限）。",
    "alpha": "置信区间的置信水平为 1 − alpha。",
    "reviewers_required": "一个数据产品需要多少位不同的审核员批准。",
    "small_count_threshold": "低于此值的含噪计数在数据产品中被隐藏，并提示审核员。",
    "host": "Web 服务器监听的地址。",
    "port": "Web 服务器监听的端口。",
    "secure_cookies": "仅通过 HTTPS 发送会话 Cookie（在 TLS 之后提供服务时设置）。",
    "secret_key": "Flask 会话密钥；留空表示由 init 创建的 <home>/keys/session.key。",
    "log_level": "实例日志记录器的日志级别。",
}
