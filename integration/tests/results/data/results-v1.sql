-- A results database written by the harness before Alembic (schema_version 1), as
-- sqlite3's iterdump() gives it: tests/results/test_migrations.py upgrades it in place.
BEGIN TRANSACTION;
CREATE TABLE combination_locks (
	combination_id INTEGER NOT NULL, 
	lock_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	lock JSON NOT NULL, 
	PRIMARY KEY (combination_id, lock_hash), 
	FOREIGN KEY(combination_id) REFERENCES combinations (id)
);
CREATE TABLE combination_modules (
	combination_id INTEGER NOT NULL, 
	module VARCHAR(64) NOT NULL, 
	version VARCHAR(64) NOT NULL, 
	"commit" VARCHAR(64) NOT NULL, 
	tree_hash VARCHAR(64) NOT NULL, 
	PRIMARY KEY (combination_id, module), 
	FOREIGN KEY(combination_id) REFERENCES combinations (id)
);
INSERT INTO "combination_modules" VALUES(1,'driver','0.1.0','aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','t1');
INSERT INTO "combination_modules" VALUES(1,'runtime','0.2.0','bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb','t2');
CREATE TABLE combinations (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	"key" VARCHAR(128) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE ("key")
);
INSERT INTO "combinations" VALUES(1,'master','k1','2026-12-03 14:49:03.501938');
CREATE TABLE contract_verdicts (
	id INTEGER NOT NULL, 
	batch INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	interface VARCHAR(64) NOT NULL, 
	consumer VARCHAR(64) NOT NULL, 
	consumer_version VARCHAR(64) NOT NULL, 
	consumer_label VARCHAR(80) NOT NULL, 
	consumer_commit VARCHAR(64) NOT NULL, 
	consumer_tree VARCHAR(64) NOT NULL, 
	tests_commit VARCHAR(64) NOT NULL, 
	tests_hash VARCHAR(64) NOT NULL, 
	provider VARCHAR(64) NOT NULL, 
	provider_version VARCHAR(64) NOT NULL, 
	provider_label VARCHAR(80) NOT NULL, 
	provider_commit VARCHAR(64) NOT NULL, 
	provider_tree VARCHAR(64) NOT NULL, 
	environment_key VARCHAR(64) NOT NULL, 
	declared BOOLEAN, 
	status VARCHAR(20) NOT NULL, 
	message TEXT NOT NULL, 
	duration_s FLOAT, 
	cached_from INTEGER, 
	details JSON NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE jobs (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	combination_id INTEGER, 
	"key" VARCHAR(400) NOT NULL, 
	stage VARCHAR(40) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	sku VARCHAR(64), 
	status VARCHAR(20) NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	duration_s FLOAT, 
	estimate_s FLOAT, 
	message TEXT NOT NULL, 
	details JSON NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (run_id, "key"), 
	FOREIGN KEY(run_id) REFERENCES runs (id), 
	FOREIGN KEY(combination_id) REFERENCES combinations (id)
);
INSERT INTO "jobs" VALUES(1,1,1,'build@k1','build','master',NULL,'passed',NULL,'2026-12-03 14:49:03.546799',1.5,NULL,'','{}');
INSERT INTO "jobs" VALUES(2,1,1,'workloads:resnet:edge@k1','workloads','resnet','edge','passed',NULL,'2026-12-03 14:49:03.554841',2.5,NULL,'','{"precision": "fp32"}');
INSERT INTO "jobs" VALUES(3,2,1,'build@k1','build','master',NULL,'passed',NULL,'2026-12-03 14:49:03.577483',1.5,NULL,'','{}');
INSERT INTO "jobs" VALUES(4,2,1,'workloads:resnet:edge@k1','workloads','resnet','edge','passed',NULL,'2026-12-03 14:49:03.581902',2.5,NULL,'','{"precision": "fp32"}');
CREATE TABLE metrics (
	id INTEGER NOT NULL, 
	job_id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	combination_id INTEGER, 
	workload VARCHAR(255), 
	sku VARCHAR(64), 
	name VARCHAR(64) NOT NULL, 
	value FLOAT NOT NULL, 
	unit VARCHAR(32) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id), 
	FOREIGN KEY(combination_id) REFERENCES combinations (id)
);
INSERT INTO "metrics" VALUES(1,2,1,1,'resnet','edge','latency_us',100.0,'us');
INSERT INTO "metrics" VALUES(2,4,2,1,'resnet','edge','latency_us',101.0,'us');
CREATE TABLE op_profiles (
	job_id INTEGER NOT NULL, 
	idx INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	op_type VARCHAR(64) NOT NULL, 
	kernel VARCHAR(255) NOT NULL, 
	fusion VARCHAR(255) NOT NULL, 
	cycles FLOAT NOT NULL, 
	macs FLOAT NOT NULL, 
	bytes_read FLOAT NOT NULL, 
	bytes_written FLOAT NOT NULL, 
	unit VARCHAR(32) NOT NULL, 
	array_utilization FLOAT NOT NULL, 
	PRIMARY KEY (job_id, idx), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);
INSERT INTO "op_profiles" VALUES(2,0,'conv0','Conv','k','Relu',10.0,5.0,1.0,2.0,'array',0.5);
INSERT INTO "op_profiles" VALUES(4,0,'conv0','Conv','k','Relu',11.0,5.0,1.0,2.0,'array',0.5);
CREATE TABLE runs (
	id INTEGER NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	status VARCHAR(20) NOT NULL, 
	tier VARCHAR(40) NOT NULL, 
	budget_s FLOAT NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	harness_version VARCHAR(40) NOT NULL, 
	"plan" JSON NOT NULL, 
	summary JSON NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "runs" VALUES(1,'2026-12-03 14:49:03.531246','2026-12-03 14:49:03.564240','completed','smoke',3600.0,'h','0.1.0','{"options": {"tier": "smoke"}}','{"used_s": 4.0}');
INSERT INTO "runs" VALUES(2,'2026-12-03 14:49:03.571779','2026-12-03 14:49:03.586184','completed','smoke',3600.0,'h','0.1.0','{"options": {"tier": "smoke"}}','{"used_s": 5.0}');
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO "schema_version" VALUES(1);
CREATE TABLE skus (
	name VARCHAR(64) NOT NULL, 
	data JSON NOT NULL, 
	PRIMARY KEY (name)
);
CREATE INDEX ix_contract_verdicts_batch ON contract_verdicts (batch);
CREATE INDEX ix_contract_verdicts_provider_tree ON contract_verdicts (provider_tree);
CREATE INDEX ix_contract_verdicts_consumer_tree ON contract_verdicts (consumer_tree);
CREATE INDEX ix_jobs_run_id ON jobs (run_id);
CREATE INDEX ix_metrics_job_id ON metrics (job_id);
CREATE INDEX ix_metrics_run_id ON metrics (run_id);
COMMIT;
