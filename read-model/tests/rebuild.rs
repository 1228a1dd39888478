//! A rebuild takes the fresh schema's indexes (and the primary keys of the tables it loads
//! with `COPY`) off for the load and puts them back after: what it puts back must be exactly
//! what the migrations built — the same names, methods, columns and partial predicates — or a
//! rebuilt read model would answer queries with other plans than a migrated one.

use sqlx::PgPool;

/// Every index of the connection's schema with its definition, and every constraint of
/// its tables with theirs, in a stable order.
async fn index_definitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname || ': ' || indexdef FROM pg_indexes
         WHERE schemaname = current_schema()
         UNION ALL
         SELECT t.relname || '.' || k.conname || ': ' || pg_get_constraintdef(k.oid)
         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
         WHERE t.relnamespace = current_schema()::regnamespace
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("index definitions")
}

#[sqlx::test(migrations = "../migrations")]
async fn a_rebuilds_indexes_are_put_back_as_the_migrations_built_them(pool: PgPool) {
    let migrated = index_definitions(&pool).await;
    assert!(
        migrated
            .iter()
            .any(|d| d.starts_with("account_entries_by_type: ") && d.contains(" WHERE ")),
        "the type index is partial: {migrated:#?}"
    );
    let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&pool)
        .await
        .expect("the schema");

    let creates = read_model::rebuild::drop_indexes(&pool, &schema)
        .await
        .expect("indexes dropped");
    let bare = index_definitions(&pool).await;
    assert!(
        !bare.iter().any(|d| d.starts_with("account_entries")),
        "the load's table is bare: {bare:#?}"
    );
    for create in &creates {
        read_model::rebuild::create_index(&pool, create)
            .await
            .expect("index built");
    }
    assert_eq!(index_definitions(&pool).await, migrated);
}
