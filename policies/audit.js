/**
 * Audit only: lets every call through and asks the node to record, in its
 * promise graph, each call made through this layer and by whom.
 * `grid delegate --audit`.
 */
export const screen = () => ({ forward: true, audit: true });
