#[actix_web::main]
async fn main() {
    api::cli::run().await;
}
