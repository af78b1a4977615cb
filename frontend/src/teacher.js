// Teacher pages: review ratings, live flag notifications (see tutor/reviews).
