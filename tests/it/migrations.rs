//! Migrations reworded after release (comments only) are accepted on databases that
//! applied the old text, and only on those.

use sha2::{Digest, Sha384};
use sqlx::PgPool;
use switchboard::store::{self, MIGRATOR, REWORDED};

#[test]
fn the_new_checksums_are_sqlx_s_sha384_of_the_new_text() {
    for (version, old) in REWORDED {
        let migration = MIGRATOR.iter().find(|m| m.version == version).expect("a known version");
        assert_eq!(
            hex::encode(Sha384::digest(migration.sql.as_str().as_bytes())),
            hex::encode(migration.checksum.as_ref()),
            "{version}: sqlx's checksum is the SHA-384 of the file, as REWORDED assumes"
        );
        assert_ne!(hex::encode(migration.checksum.as_ref()), old, "{version}: the text did change");
    }
}

async fn checksum(pool: &PgPool, version: i64) -> Vec<u8> {
    sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = $1")
        .bind(version)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_database_that_applied_the_old_text_migrates(pool: PgPool) {
    for (version, old) in REWORDED {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $2 WHERE version = $1")
            .bind(version)
            .bind(hex::decode(old).unwrap())
            .execute(&pool)
            .await
            .unwrap();
    }
    store::migrate(&pool).await.expect("the old texts are accepted");
    for (version, _) in REWORDED {
        let migration = MIGRATOR.iter().find(|m| m.version == version).unwrap();
        assert_eq!(checksum(&pool, version).await, migration.checksum.as_ref());
    }
}

#[sqlx::test]
async fn any_other_changed_text_is_still_refused(pool: PgPool) {
    let (version, _) = REWORDED[0];
    sqlx::query("UPDATE _sqlx_migrations SET checksum = '\\x00' WHERE version = $1")
        .bind(version)
        .execute(&pool)
        .await
        .unwrap();
    let refused = store::migrate(&pool).await;
    assert!(matches!(refused, Err(sqlx::migrate::MigrateError::VersionMismatch(v)) if v == version), "{refused:?}");
}
