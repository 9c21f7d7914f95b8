// A faster allocator: a GraphQL response allocates many small objects, and
// glibc's malloc showed at the top of the profile under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[actix_web::main]
async fn main() {
    api::cli::run().await;
}
