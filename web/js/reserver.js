/* reserver.js -- placeholder until the planning page lands. */
export async function viewReserver(ctx) {
    ctx.page("Modifier les réservations");
}
